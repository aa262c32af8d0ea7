"""The pipeline flow: the DVC pipeline run as a Prefect flow, with independent stages in parallel.

Only documented DVC commands are used (README, "Prefect"):

1. ``profile`` / ``overrides`` are written into ``params.yaml`` first, exactly as ``dvc exp run -S`` does, so the
   parameters DVC records are the ones that ran.
2. ``dvc dag --dot`` gives the stage graph; it is cut into levels (``synth`` | ``select`` | ``normalize`` | ``folds``
   | ``train1@0..3`` | ``oof`` | ``train2@…`` | ``export`` | ``evaluate``): the stages of a level depend only on
   earlier levels.
3. Level by level, ``dvc status --json`` names the stages that are out of date, and each of them runs as
   ``dvc --wait-for-lock repro --single-item STAGE`` — a task on the chosen runner (threads, processes, Dask, Ray), so
   the round-1 folds and the round-2 seeds train at the same time. DVC itself runs the stage's ``cmd``, checks its
   outputs and writes its entry in ``dvc.lock``, as in a plain ``dvc repro``; nothing of DVC is re-implemented here.

Why running several ``dvc repro`` at once in one checkout is safe: DVC holds the repository lock only for its
bookkeeping (reading the graph and status, hashing outputs, writing ``dvc.lock``) and releases it while the stage's
command runs; ``--wait-for-lock`` makes a process wait for that lock instead of failing with "Unable to acquire
lock". Reading and writing a stage's deps and outs is guarded by DVC's per-path read/write locks, and the stages of one
level have disjoint outputs (each fold or seed writes its own folder), so no two commands write the same path.
``dvc.lock`` is rewritten under the repository lock, one stage at a time, so each stage records the hashes of exactly
the deps it read and the outs it wrote: ``dvc status`` is exact after a flow run, and ``dvc repro`` right after is a
no-op.

When ``ASLFS_PIPELINE_RUN`` is set (this flow sets it to the Prefect flow-run id), the MLflow runs of the stages carry
that id and are nested under one parent run (:mod:`aslfs.tracking`).
"""


import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from aslfs import env
from aslfs.atomic import write_text
from aslfs.errors import AslfsError
from aslfs.pipeline import project_env, read_summary
from flows.runners import RunnerKind, make_task_runner

env.setup()
env.quiet_prefect_console()

DVC = str(Path(sys.executable).parent / "dvc")  # the project environment's DVC
_DOT_EDGE = re.compile(r'^"([^"]+)"\s*->\s*"([^"]+)"')
_DOT_NODE = re.compile(r'^"([^"]+)";')


def _dvc_output(root: Path, *args: str, environ: dict[str, str] | None = None) -> str:
    proc = subprocess.run([DVC, *args], cwd=root, env=environ or project_env(root),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AslfsError(f"`dvc {' '.join(args)}` failed (exit {proc.returncode}): {tail[0]}")
    return proc.stdout


def dag_levels(root: Path, environ: dict[str, str] | None = None) -> list[list[str]]:
    """Stage addresses level by level, upstream first, from ``dvc dag --dot``."""
    nodes: list[str] = []
    upstream: dict[str, set[str]] = {}
    for line in _dvc_output(root, "dag", "--dot", environ=environ).splitlines():
        line = line.strip()
        if edge := _DOT_EDGE.match(line):
            upstream.setdefault(edge.group(2), set()).add(edge.group(1))
        elif node := _DOT_NODE.match(line):
            nodes.append(node.group(1))
    levels: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(nodes):
        level = sorted(n for n in nodes if n not in done and upstream.get(n, set()) <= done)
        if not level:
            raise AslfsError("dvc dag: the stage graph has a cycle")
        levels.append(level)
        done.update(level)
    return levels


def changed_stages(root: Path, addresses: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """The stages among ``addresses`` that ``dvc status`` reports as out of date."""
    status = json.loads(_dvc_output(root, "status", "--json", *addresses, environ=environ) or "{}")
    return [a for a in addresses if a in status]


@task(name="dvc-stage", task_run_name="{address}")
def run_stage(root: str, address: str, environ: dict[str, str], force: bool = False) -> float:
    """``dvc repro --single-item`` of one stage (DVC runs its cmd and records it in dvc.lock); returns wall time."""
    logger = get_run_logger()
    cmd = [DVC, "--wait-for-lock", "repro", "--single-item", *(["--force"] if force else []), address]
    logger.info("stage %s: %s", address, " ".join(cmd[1:]))
    start = time.time()
    proc = subprocess.run(cmd, cwd=root, env=environ, capture_output=True, text=True)
    if proc.stdout.strip():
        logger.info("%s", proc.stdout.strip()[-4000:])
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        raise AslfsError(f"stage {address} failed (exit {proc.returncode}): {(lines or ['no output'])[-1]}")
    return time.time() - start


@flow(name="aslfs-stage-level")
def run_level(root: str, addresses: list[str], environ: dict[str, str], force: bool = False) -> dict[str, float]:
    """Run the stages of one DAG level concurrently on this flow's task runner."""
    futures = {address: run_stage.submit(root, address, environ, force) for address in addresses}
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
) -> dict:
    """Run the aslfs pipeline (the stages of dvc.yaml) and return the summary (score, TFLite file, registry)."""
    rootp = Path(root).resolve()
    os.chdir(rootp)  # DVC addresses stages relative to the working directory
    apply_params(rootp, profile, overrides or {})
    environ = project_env(rootp)
    environ["ASLFS_PIPELINE_RUN"] = os.environ.get("ASLFS_PIPELINE_RUN") or str(flow_run.get_id() or time.time())
    runner = make_task_runner(task_runner, max_workers=max_workers, address=address)
    timings: dict[str, float] = {}
    for level in dag_levels(rootp, environ):
        todo = level if force else changed_stages(rootp, level, environ)
        if todo:
            timings.update(run_level.with_options(task_runner=runner)(str(rootp), todo, environ, force))
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
