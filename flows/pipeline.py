"""The pipeline flow: the DVC pipeline run as a Prefect flow, with independent stages in parallel.

How it keeps DVC's bookkeeping (README, "Prefect"):

1. ``profile`` / ``overrides`` are written into ``params.yaml`` first, exactly as ``dvc exp run -S`` does, so the
   parameters DVC records are the ones that ran.
2. The stages of ``dvc.yaml`` are grouped into DAG levels (``synth`` | ``select`` | ``normalize`` | ``folds`` |
   ``train1@0..3`` | ``oof`` | ``train2@…`` | ``export`` | ``evaluate``). For each level, the stages DVC reports as
   changed (``dvc status``) run concurrently through the chosen task runner (threads, processes, Dask or Ray); each runs
   its own ``cmd`` from ``dvc.yaml`` — the same command ``dvc repro`` runs, so a stage is never re-implemented here.
3. After a level, ``dvc commit`` records the outputs of the stages that ran in ``dvc.lock``. ``dvc status`` is
   therefore clean after a flow run, and ``dvc repro`` right after is a no-op, as after ``dvc repro`` itself.

All MLflow runs of one flow run share ``ASLFS_PIPELINE_RUN`` = the Prefect flow-run id and appear nested under one
parent run in MLflow.
"""


import os
import subprocess
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from aslfs import env
from aslfs.errors import AslfsError
from aslfs.pipeline import dvc, project_env, read_summary
from flows.runners import RunnerKind, make_task_runner

env.setup()


def dag_levels(root: Path) -> list[list[tuple[str, str]]]:
    """``[[(stage address, cmd), ...], ...]`` level by level, upstream first."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph
        levels = []
        for gen in nx.topological_generations(graph.reverse()):
            stages = sorted((s for s in gen if getattr(s, "cmd", None)), key=lambda s: s.addressing)
            if stages:
                levels.append([(s.addressing, s.cmd) for s in stages])
        return levels


def changed_stages(root: Path, addresses: list[str]) -> list[str]:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return [a for a in addresses if repo.status(targets=[a])]


@task(name="dvc-stage", task_run_name="{address}")
def run_stage(root: str, address: str, cmd: str, environ: dict[str, str]) -> float:
    """Run one stage's command (as written in dvc.yaml) in the project root; returns its wall time."""
    logger = get_run_logger()
    logger.info("stage %s: %s", address, cmd)
    start = time.time()
    proc = subprocess.run(cmd, shell=True, cwd=root, env=environ, capture_output=True, text=True)
    if proc.stdout.strip():
        logger.info("%s", proc.stdout.strip()[-4000:])
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AslfsError(f"stage {address} failed (exit {proc.returncode}): {tail[0]}")
    return time.time() - start


@flow(name="aslfs-stage-level")
def run_level(root: str, stages: list[tuple[str, str]], environ: dict[str, str]) -> dict[str, float]:
    """Run the stages of one DAG level concurrently on this flow's task runner."""
    futures = {address: run_stage.submit(root, address, cmd, environ) for address, cmd in stages}
    return {address: fut.result() for address, fut in futures.items()}


def apply_params(root: Path, profile: str | None, overrides: dict[str, Any]) -> None:
    """Write ``profile`` and dotted ``overrides`` into params.yaml (comments kept), then validate the result."""
    if not profile and not overrides:
        return
    from ruamel.yaml import YAML

    from aslfs.config import load_params

    yaml = YAML()
    path = root / "params.yaml"
    data = yaml.load(path.read_text())
    if profile:
        data["profile"] = profile
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    backup = path.read_text()
    with path.open("w") as fh:
        yaml.dump(data, fh)
    try:
        load_params(path)
    except AslfsError:
        path.write_text(backup)  # leave the user's file as it was
        raise


@flow(name="aslfs-pipeline", log_prints=True)
def pipeline(
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    task_runner: RunnerKind = "threads",
    max_workers: int = 2,
    address: str | None = None,
    root: str = ".",
    force: bool = False,
) -> dict:
    """Run the aslfs pipeline (the stages of dvc.yaml) and return the summary (score, TFLite file, registry)."""
    rootp = Path(root).resolve()
    os.chdir(rootp)  # DVC addresses stages relative to the working directory
    apply_params(rootp, profile, overrides or {})
    environ = project_env(rootp)
    environ["ASLFS_PIPELINE_RUN"] = os.environ.get("ASLFS_PIPELINE_RUN") or str(flow_run.get_id() or time.time())
    runner = make_task_runner(task_runner, max_workers=max_workers, address=address)
    timings: dict[str, float] = {}
    for level in dag_levels(rootp):
        addresses = [a for a, _ in level]
        todo = addresses if force else changed_stages(rootp, addresses)
        if not todo:
            continue
        stages = [(a, c) for a, c in level if a in todo]
        timings.update(run_level.with_options(task_runner=runner)(str(rootp), stages, environ))
        dvc(rootp, "commit", "--force", "--quiet", *todo, environ=environ)
    summary = read_summary(rootp)
    summary["stage_seconds"] = timings
    print(f"stages run: {', '.join(timings) or 'none (up to date)'}")
    return summary


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Run the aslfs pipeline as a Prefect flow")
    parser.add_argument("--profile")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params override (YAML value)")
    parser.add_argument("--task-runner", default="threads", choices=["threads", "processes", "dask", "ray"])
    parser.add_argument("--max-workers", type=int, default=2)
    parser.add_argument("--address")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--root", default=".", help="project checkout (default: here)")
    args = parser.parse_args()
    import yaml

    ov = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    try:
        result = pipeline(args.profile, ov, args.task_runner, args.max_workers, args.address, args.root, args.force)
    except AslfsError as err:
        raise SystemExit(f"aslfs-pipeline: error: {err}") from None
    print(json.dumps({k: v for k, v in result.items() if k != "select"}, indent=2, default=str))
