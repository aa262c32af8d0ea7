"""Task runners for the pipeline flow: where independent work (round-1 folds, round-2 seeds, parquet files) runs.

- ``threads`` (default): a thread pool in the flow's process; stage commands are subprocesses, so threads suffice.
- ``processes``: a local process pool.
- ``dask``: ``prefect-dask``; a temporary local cluster (``max_workers`` single-threaded worker processes), or an
  existing cluster when ``address`` is given (``tcp://scheduler:8786``). Workers need the project checkout at the same
  path (shared filesystem), which is how a DVC workspace is shared on a cluster.
- ``ray``: ``prefect-ray`` (install ``pip install prefect-ray``); a local Ray instance or ``address``.

**GPUs per training** (``gpus_per_training`` > 0): each training stage asks its runner for that many GPUs, as a
resource request, so that two trainings never share one. Dask: the task is annotated ``resources={"GPU": n}``; a
local cluster gives every worker ``n`` GPUs, and worker ``i`` trains on the visible GPUs ``i·n … i·n + n − 1``; on an
existing cluster each worker is started on its own GPUs (``CUDA_VISIBLE_DEVICES=0,1 dask worker ADDRESS --resources
GPU=2``, or dask-cuda's one worker per GPU) and the training uses them. Ray: ``num_gpus=n`` in the task's remote
options; Ray assigns the GPUs (``ray.get_gpu_ids()``). The training stage then sees exactly its GPUs
(``CUDA_VISIBLE_DEVICES``), and ``train.distribution: auto`` trains data-parallel over them when there are several.
"""

from __future__ import annotations

import contextlib
import os
from typing import Literal

RunnerKind = Literal["threads", "processes", "dask", "ray"]

#: The dvc.yaml stages that train (their foreach items are folds or seeds): the ones that ask for GPUs.
TRAINING_STAGES = ("train1", "train2")


def make_task_runner(kind: RunnerKind = "threads", max_workers: int = 2, address: str | None = None,
                     gpus_per_training: int = 0):
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
        cluster = {"n_workers": max_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        if gpus_per_training:
            cluster["resources"] = {"GPU": gpus_per_training}
        return DaskTaskRunner(cluster_kwargs=cluster)
    if kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as err:
            raise RuntimeError("task runner 'ray' needs prefect-ray: pip install prefect-ray") from err
        return RayTaskRunner(address=address) if address else RayTaskRunner()
    raise ValueError(f"unknown task runner {kind!r}; choose threads, processes, dask or ray")


def gpu_request(kind: RunnerKind, address: str, gpus_per_training: int, gpu_stages=TRAINING_STAGES) -> int:
    """The GPUs that stage ``address`` asks for: ``gpus_per_training`` for a training stage on Dask or Ray, else 0
    (thread and process pools have no resource model)."""
    if gpus_per_training <= 0 or kind not in ("dask", "ray"):
        return 0
    return gpus_per_training if address.split("@")[0] in gpu_stages else 0


@contextlib.contextmanager
def requesting(kind: RunnerKind, gpus: int):
    """Submit tasks inside this to make them ask the runner for ``gpus`` GPUs (nothing when 0)."""
    if gpus <= 0:
        yield
    elif kind == "dask":
        import dask

        with dask.annotate(resources={"GPU": gpus}):
            yield
    else:
        from prefect_ray.context import remote_options

        with remote_options(num_gpus=gpus):
            yield


def assigned_gpus(count: int, local_cluster: bool) -> str:
    """Inside a task that asked for ``count`` GPUs: the ``CUDA_VISIBLE_DEVICES`` value of the GPUs it got.

    Raises:
        RuntimeError: the task does not run on a Dask worker or in a Ray task, or the worker has no GPUs to give.
    """
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        worker = None
    if worker is not None:
        own = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        if not local_cluster:
            if not own:
                raise RuntimeError(f"dask worker {worker.name}: start it on its GPUs (CUDA_VISIBLE_DEVICES)")
            return own
        index = int(worker.name)  # a local cluster names its workers 0, 1, ...
        visible = own.split(",") if own else [str(i) for i in range(1_000)]
        return ",".join(visible[index * count:(index + 1) * count])
    with contextlib.suppress(ImportError):
        import ray

        if ray.is_initialized():
            return ",".join(str(i) for i in ray.get_gpu_ids())
    raise RuntimeError("a GPU request outside a Dask worker or a Ray task")
