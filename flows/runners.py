"""Task runners for the pipeline flow: where independent work (round-1 folds, round-2 seeds, parquet files) runs.

- ``threads`` (default): a thread pool in the flow's process; stage commands are subprocesses, so threads suffice.
- ``processes``: a local process pool.
- ``dask``: ``prefect-dask``; a temporary local cluster (``max_workers`` single-threaded worker processes), or an
  existing cluster when ``address`` is given (``tcp://scheduler:8786``). Workers need the project checkout at the same
  path (shared filesystem), which is how a DVC workspace is shared on a cluster.
- ``ray``: ``prefect-ray`` (install ``pip install prefect-ray``); a local Ray instance or ``address``.
"""

from __future__ import annotations

from typing import Literal

RunnerKind = Literal["threads", "processes", "dask", "ray"]


def make_task_runner(kind: RunnerKind = "threads", max_workers: int = 2, address: str | None = None):
    if kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max_workers)
    if kind == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=max_workers)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": max_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        )
    if kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as err:
            raise RuntimeError("task runner 'ray' needs prefect-ray: pip install prefect-ray") from err
        return RayTaskRunner(address=address) if address else RayTaskRunner()
    raise ValueError(f"unknown task runner {kind!r}; choose threads, processes, dask or ray")
