"""MLflow tracking: the only module that talks to MLflow (runs, grouping, metrics, artifacts, registry URIs).

- Store: ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<project root>/mlflow.db`` with artifacts under
  ``<project root>/mlruns`` — no server needed; ``mlflow ui --backend-store-uri sqlite:///mlflow.db`` browses it.
- Grouping: every run of one pipeline execution carries the tag ``aslfs.pipeline_run`` and is nested under a parent
  run of that id (created on first use), so the MLflow UI shows a pipeline run with its trainings, OOF, export and
  evaluation as children. The id comes from ``ASLFS_PIPELINE_RUN`` (set by the demo, the Prefect pipeline flow or the
  user); without it each stage run is a top-level run.
- Library functions take an optional :class:`Tracker`; ``None`` (tests, quick experiments) logs nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from aslfs.errors import AslfsError

EXPERIMENT = "aslfs"
PIPELINE_TAG = "aslfs.pipeline_run"


class TrackingError(AslfsError):
    """The tracking store cannot be reached or used."""


def project_root() -> Path:
    """The project root: ``ASLFS_ROOT`` when set, else the current directory (DVC runs stages from the root)."""
    return Path(os.environ.get("ASLFS_ROOT", os.getcwd())).resolve()


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{project_root() / 'mlflow.db'}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingError(f"MLflow tracking server {uri} is unreachable ({reason}); start it or unset MLFLOW_TRACKING_URI") from None


def git_commit(root: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or project_root(), capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dict → flat ``a.b.c`` keys (MLflow params are flat strings)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


class Tracker:
    """A thin handle on one active MLflow run."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def log_params(self, params: dict) -> None:
        import mlflow

        flat = {k: str(v)[:6000] for k, v in flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 100):
            mlflow.log_params(dict(items[i : i + 100]))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import mlflow

        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        if clean:
            mlflow.log_metrics(clean, step=step)

    def set_tags(self, tags: dict[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        path = Path(path)
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=artifact_path)
        elif path.exists():
            mlflow.log_artifact(str(path), artifact_path=artifact_path)


def _store_lock():
    """Concurrent stages (round-1 folds, round-2 seeds) open the store at the same time: creating a new sqlite store
    (MLflow migrates its schema), the experiment or a pipeline's parent run happens one process at a time, else two
    processes race (``duplicate column name``, ``experiment already exists``, two parent runs)."""
    from aslfs.atomic import process_lock

    return process_lock(project_root() / ".servers" / "mlflow-store.lock")


def _setup_experiment():
    import mlflow

    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    try:
        exp = mlflow.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            location = None
            if uri.startswith("sqlite:"):
                location = (project_root() / "mlruns").as_uri()
            mlflow.create_experiment(EXPERIMENT, artifact_location=location)
        mlflow.set_experiment(EXPERIMENT)
    except Exception as err:  # mlflow raises many types for a broken store
        raise TrackingError(f"MLflow store {uri}: {str(err).splitlines()[0]}") from None


def _parent_run_id(pipeline_run: str) -> str:
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    found = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{PIPELINE_TAG}` = '{pipeline_run}' and tags.`aslfs.kind` = 'pipeline'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(
        exp.experiment_id,
        run_name=f"pipeline-{pipeline_run}",
        tags={PIPELINE_TAG: pipeline_run, "aslfs.kind": "pipeline", "mlflow.source.git.commit": git_commit()},
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def close_stale_runs(tag: str, value: str, keep_run_id: str) -> list[str]:
    """Mark KILLED the runs still RUNNING whose ``tag`` equals ``value``, except ``keep_run_id``.

    A process killed by SIGKILL cannot end its own run; the next attempt of the same work (same output directory)
    closes it, tagged ``aslfs.superseded_by``, so the tracking store shows what happened instead of a run forever
    RUNNING. Returns the closed run ids.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    quoted = value.replace("'", "\\'")
    stale = client.search_runs([exp.experiment_id],
                               filter_string=f"tags.`{tag}` = '{quoted}' and attributes.status = 'RUNNING'")
    closed = []
    for run in stale:
        if run.info.run_id == keep_run_id:
            continue
        client.set_tag(run.info.run_id, "aslfs.superseded_by", keep_run_id)
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    return closed


@contextlib.contextmanager
def start_run(run_name: str, kind: str, params: dict | None = None, tags: dict | None = None,
              resume_run_id: str | None = None) -> Iterator[Tracker]:
    """Open an MLflow run (resuming ``resume_run_id`` when given), grouped under the current pipeline run.

    A run interrupted by an exception is marked FAILED (KeyboardInterrupt: KILLED) rather than left RUNNING.
    """
    import mlflow

    pipeline_run = os.environ.get("ASLFS_PIPELINE_RUN")
    all_tags = {"aslfs.kind": kind, "mlflow.source.git.commit": git_commit()}
    with _store_lock():
        _setup_experiment()
        if pipeline_run:
            all_tags[PIPELINE_TAG] = pipeline_run
            all_tags["mlflow.parentRunId"] = _parent_run_id(pipeline_run)
    all_tags.update(tags or {})
    if resume_run_id:
        run = mlflow.start_run(run_id=resume_run_id)
    else:
        run = mlflow.start_run(run_name=run_name, tags={k: str(v) for k, v in all_tags.items()})
    tracker = Tracker(run.info.run_id)
    try:
        if params and not resume_run_id:
            tracker.log_params(params)
        yield tracker
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")
