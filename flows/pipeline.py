"""The pipeline flow: the DVC pipeline run as a Prefect flow, with independent stages in parallel.

The scheduling is the library's (:mod:`aslfs.pipeline`, which ``aslfs demo`` runs too): ``profile`` / ``overrides``
are first written into ``params.yaml``, exactly as ``dvc exp run -S`` does, so the parameters DVC records are the
ones that ran; then ``dvc dag`` levels, ``dvc status`` per level, and each out-of-date stage as
``dvc --wait-for-lock repro --single-item STAGE`` — here a task on the chosen runner (threads, processes, Dask, Ray),
so the round-1 folds and the round-2 seeds train at the same time. Why that is safe in one checkout, and why
``dvc status`` is exact afterwards: :mod:`aslfs.pipeline`.

When ``ASLFS_PIPELINE_RUN`` is set (this flow sets it to the Prefect flow-run id), the MLflow runs of the stages carry
that id and are nested under one parent run (:mod:`aslfs.tracking`).
"""


import io
import json
import os
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from aslfs import env
from aslfs.atomic import write_text
from aslfs.errors import AslfsError
from aslfs.pipeline import LOG_DIR, changed_stages, dag_levels, project_env, read_summary, thread_env
from aslfs.pipeline import run_stage as run_one_stage
from flows.runners import TRAINING_STAGES, RunnerKind, assigned_gpus, gpu_request, make_task_runner, requesting

env.setup()
env.quiet_prefect_console()


@task(name="dvc-stage", task_run_name="{address}")
def run_stage(root: str, address: str, environ: dict[str, str], force: bool = False, gpus: int = 0,
              local_cluster: bool = True) -> float:
    """``dvc repro --single-item`` of one stage (DVC runs its cmd and records it in dvc.lock); returns wall time.
    ``gpus`` > 0: the stage runs on the GPUs its runner assigned to this task (flows/runners.py)."""
    logger = get_run_logger()
    if gpus:
        environ = {**environ, "CUDA_VISIBLE_DEVICES": assigned_gpus(gpus, local_cluster)}
        logger.info("stage %s: GPUs %s", address, environ["CUDA_VISIBLE_DEVICES"])
    logger.info("stage %s: dvc repro --single-item %s", address, address)
    lines: list[str] = []
    seconds = run_one_stage(Path(root), address, environ, force, on_line=lines.append,
                            log_dir=Path(root) / LOG_DIR)
    if any(line.strip() for line in lines):
        logger.info("%s", "\n".join(lines)[-4000:])
    return seconds


@flow(name="aslfs-stage-level")
def run_level(root: str, addresses: list[str], environ: dict[str, str], force: bool = False,
              task_runner: RunnerKind = "threads", gpus_per_training: int = 0,
              gpu_stages: tuple[str, ...] = TRAINING_STAGES, local_cluster: bool = True) -> dict[str, float]:
    """Run the stages of one DAG level concurrently on this flow's task runner; training stages ask it for
    ``gpus_per_training`` GPUs each (Dask, Ray)."""
    futures = {}
    for address in addresses:
        gpus = gpu_request(task_runner, address, gpus_per_training, gpu_stages)
        with requesting(task_runner, gpus):
            futures[address] = run_stage.submit(root, address, environ, force, gpus, local_cluster)
    return {address: fut.result() for address, fut in futures.items()}


def apply_params(root: Path, profile: str | None, overrides: dict[str, Any]) -> None:
    """Write ``profile`` (all of its values, as ``aslfs profile NAME`` does) and then the
    dotted ``overrides`` into params.yaml (comments kept), and validate the result. A rejected result leaves the
    user's file as it was."""
    if not profile and not overrides:
        return
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    from aslfs.config import load_params
    from aslfs.profiles import params_yaml

    yaml = YAML()
    # params.yaml is read back by a YAML 1.1 loader, where a plain ``off`` or ``yes`` is a boolean: keep the quotes
    # of the file and quote the strings written here
    yaml.preserve_quotes = True
    path = root / "params.yaml"
    backup = path.read_text()
    if profile:
        data = yaml.load(params_yaml(profile))
    else:
        data = yaml.load(backup)
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = SingleQuotedScalarString(value) if isinstance(value, str) else value
    text = io.StringIO()
    yaml.dump(data, text)
    write_text(path, text.getvalue())
    try:
        load_params(path)
    except AslfsError:
        write_text(path, backup)  # leave the user's file as it was
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
    gpus_per_training: int = 0,
    gpu_stages: tuple[str, ...] = TRAINING_STAGES,
) -> dict:
    """Run the aslfs pipeline (the stages of dvc.yaml) and return the summary (score, TFLite file, registry).
    ``gpus_per_training``: on Dask or Ray, each training stage (``gpu_stages``) gets that many GPUs of its own."""
    rootp = Path(root).resolve()
    os.chdir(rootp)  # DVC addresses stages relative to the working directory
    apply_params(rootp, profile, overrides or {})
    environ = project_env(rootp)
    environ["ASLFS_PIPELINE_RUN"] = os.environ.get("ASLFS_PIPELINE_RUN") or str(flow_run.get_id() or time.time())
    if address is None:  # a local pool: its workers share this machine's cores
        environ = thread_env(environ, max_workers)
    runner = make_task_runner(task_runner, max_workers=max_workers, address=address,
                              gpus_per_training=gpus_per_training)
    timings: dict[str, float] = {}
    for level in dag_levels(rootp, environ):
        todo = level if force else changed_stages(rootp, level, environ)
        if todo:
            timings.update(run_level.with_options(task_runner=runner)(
                str(rootp), todo, environ, force, task_runner, gpus_per_training, tuple(gpu_stages), address is None))
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
    parser.add_argument("--gpus-per-training", type=int, default=0,
                        help="dask/ray: GPUs each training stage asks for (its own; default 0: no request)")
    parser.add_argument("--gpu-stages", default=",".join(TRAINING_STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--root", default=".", help="project checkout (default: here)")
    args = parser.parse_args()
    import yaml

    ov = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    try:
        result = pipeline(args.profile, ov, args.task_runner, args.max_workers, args.address, args.root, args.force,
                          args.gpus_per_training, tuple(args.gpu_stages.split(",")))
    except AslfsError as err:
        raise SystemExit(f"aslfs-pipeline: error: {err}") from None
    print(json.dumps({k: v for k, v in result.items() if k != "select"}, indent=2, default=str))
