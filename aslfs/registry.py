"""MLflow Model Registry: the exported TFLite ensemble as the registered model ``asl-fingerspelling``.

- :func:`register_submission` logs the submission folder (``model.tflite`` + ``inference_args.json``) as a pyfunc
  (:class:`aslfs.serving.pyfunc.TFLitePhraseModel`) in the active tracking run and registers a new version, tagged
  with the file's SHA-256 so later stages can find it (:func:`find_version`).
- :func:`promote_if_better` records a version's held-out score (version tag ``aslfs.score``) and moves the alias
  ``champion`` to it when there is no champion yet or the score beats the champion's; otherwise the alias stays.
- Each version explains itself (:mod:`aslfs.serving.card`): a signature (frames float32 ``[n_frames, 390]`` in
  ``inference_args.json`` order, NaN allowed → phrase string), an input example, and a model card as its description;
  :func:`promote_if_better` adds the held-out score and the evaluation run (id, link, metrics) to the card.
- :func:`resolve_tflite` turns a model directory, a ``.tflite`` path or an MLflow model URI
  (``models:/asl-fingerspelling@champion``, ``runs:/...``) into a local ``model.tflite`` path.

The store is the one :mod:`aslfs.tracking` uses (``MLFLOW_TRACKING_URI`` or the project's sqlite file).
Aliases, not stages (stages are deprecated since MLflow 2.9).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from aslfs.errors import AslfsError, DataError

MODEL_NAME = "asl-fingerspelling"
CHAMPION = "champion"
SHA_TAG = "aslfs.sha256"
SCORE_TAG = "aslfs.score"
SCORE_KEY_TAG = "aslfs.score_key"
#: version tag: the pyfunc wrapping's format. Format 2 let MLflow's scoring server pass ragged batches through; format 3
#: adds the frames → phrase signature, the input example and the model card (:mod:`aslfs.serving.card`). A version in
#: an older format is logged again when its file is registered.
PYFUNC_TAG = "aslfs.pyfunc_format"
PYFUNC_FORMAT = "3"
#: version tag: the MLflow run of the evaluation that scored the version (:func:`promote_if_better`).
EVAL_RUN_TAG = "aslfs.eval_run_id"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    sha256: str
    uri: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Promotion:
    """Outcome of :func:`promote_if_better`."""

    name: str
    version: str
    score: float
    alias: str
    promoted: bool
    champion_version: str  # the version holding the alias afterwards
    previous_version: str | None
    previous_score: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def client():
    """An ``MlflowClient`` on the project's store (tracking and registry)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from aslfs import tracking

    uri = tracking.tracking_uri()
    tracking.check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _submission_files(submission_dir: Path) -> tuple[Path, Path]:
    tflite = submission_dir / "model.tflite"
    args = submission_dir / "inference_args.json"
    for path in (tflite, args):
        if not path.is_file():
            raise DataError(f"{path}: not found (expected the two files of a submission)")
    return tflite, args


def register_submission(submission_dir: str | Path, name: str = MODEL_NAME, tags: dict | None = None,
                        facts: dict | None = None) -> RegisteredVersion:
    """Log ``submission_dir`` as a TFLite pyfunc in the active MLflow run and register it as a new version of ``name``.

    Call it inside :func:`aslfs.tracking.start_run`. When a version with the same file hash exists already, that
    version is returned and nothing new is logged (re-running an unchanged export does not pile up versions), unless
    it was logged in an older pyfunc format (tag :data:`PYFUNC_TAG`): then a new version is logged.

    Args:
        submission_dir: the folder holding ``model.tflite`` and ``inference_args.json``.
        name: registered model name.
        tags: extra version tags (values stringified).
        facts: what the export knows about the file (head, members, steps, ...), shown in the model card.

    The version explains itself (:mod:`aslfs.serving.card`): a signature (frames float32 ``[n_frames, 390]`` →
    phrase string), an input example, and a model card as its description; the registered model gets a short
    description when it has none.
    """
    import mlflow

    from aslfs.serving import card

    submission_dir = Path(submission_dir)
    tflite, args = _submission_files(submission_dir)
    sha = file_sha256(tflite)
    existing = find_version(sha, name)
    if existing is not None and _version_tags(existing).get(PYFUNC_TAG) == PYFUNC_FORMAT:
        return existing
    active = mlflow.active_run()
    if active is None:
        raise AslfsError("register_submission needs an active MLflow run (use aslfs.tracking.start_run)")
    with _quiet_mlflow():
        info = _log_pyfunc(tflite, args, name)
    version = str(info.registered_model_version)
    mlclient = client()
    all_tags = {SHA_TAG: sha, PYFUNC_TAG: PYFUNC_FORMAT, "aslfs.bytes": tflite.stat().st_size, **(tags or {})}
    for key, value in all_tags.items():
        mlclient.set_model_version_tag(name, version, key, str(value))
    text = card.model_card(name, version, sha=sha, size=tflite.stat().st_size, run_id=active.info.run_id,
                           facts=facts or {}, pipeline=card.pipeline_facts())
    mlclient.update_model_version(name, version, description=text)
    if not mlclient.get_registered_model(name).description:
        mlclient.update_registered_model(name, description=card.registered_model_description(name))
    return RegisteredVersion(name=name, version=version, run_id=active.info.run_id, sha256=sha,
                             uri=f"models:/{name}/{version}")


def _version_tags(version: RegisteredVersion) -> dict:
    return client().get_model_version(version.name, version.version).tags or {}


@contextlib.contextmanager
def _quiet_mlflow():
    """MLflow's routine notices while our model is logged and registered (the cloudpickle advice, the input example
    check, artifact progress bars, "Created version"): the caller reports the version. On an error what MLflow
    printed is shown with it."""
    import io
    import logging
    import os
    import sys

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            yield
    except BaseException:
        sys.stderr.write(said.getvalue())
        raise
    finally:
        logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


def _log_pyfunc(tflite: Path, args: Path, name: str):
    import mlflow

    from aslfs.serving import card
    from aslfs.serving.pyfunc import TFLitePhraseModel

    return mlflow.pyfunc.log_model(
        name="tflite-model",
        python_model=TFLitePhraseModel(),
        artifacts={"model": str(tflite), "inference_args": str(args)},
        pip_requirements=["ai-edge-litert", "numpy", "pandas"],
        registered_model_name=name,
        await_registration_for=60,
        model_config={"threads": 2},
        signature=card.model_signature(),
        input_example=card.input_example(),
    )


def find_version(sha256: str, name: str = MODEL_NAME) -> RegisteredVersion | None:
    """The newest registered version of ``name`` whose file hash is ``sha256``, or ``None``."""
    mlclient = client()
    try:
        versions = mlclient.search_model_versions(f"name = '{name}'")
    except Exception:  # no such registered model yet
        return None
    matches = [v for v in versions if (v.tags or {}).get(SHA_TAG) == sha256]
    if not matches:
        return None
    best = max(matches, key=lambda v: int(v.version))
    return RegisteredVersion(name=name, version=str(best.version), run_id=best.run_id or "", sha256=sha256,
                             uri=f"models:/{name}/{best.version}")


def _version_score(mlclient, name: str, version: str) -> float | None:
    tags = mlclient.get_model_version(name, version).tags or {}
    try:
        score = float(tags[SCORE_TAG])
    except (KeyError, ValueError):
        return None
    return score if math.isfinite(score) else None


def promote_if_better(version: str, score: float, name: str = MODEL_NAME, alias: str = CHAMPION,
                      score_key: str = "score") -> Promotion:
    """Tag ``version`` with ``score`` and move ``alias`` to it when it beats the current holder (higher is better).

    The alias moves when nobody holds it, when the holder has no recorded score, or when ``score`` is strictly
    greater than the holder's. A version never loses to itself.
    """
    version = str(version)
    score = float(score)
    if not math.isfinite(score):
        raise AslfsError(f"{name} version {version}: score {score} is not a finite number")
    mlclient = client()
    mlclient.set_model_version_tag(name, version, SCORE_TAG, repr(score))
    mlclient.set_model_version_tag(name, version, SCORE_KEY_TAG, score_key)
    try:
        holder = mlclient.get_model_version_by_alias(name, alias)
    except Exception:  # MlflowException: alias not found
        holder = None
    previous_version = str(holder.version) if holder is not None else None
    previous_score = _version_score(mlclient, name, previous_version) if holder is not None else None
    promote = holder is None or previous_score is None or previous_version == version or score > previous_score
    if promote:
        mlclient.set_registered_model_alias(name, alias, version)
    _describe_evaluation(mlclient, name, version, score, score_key)
    return Promotion(name=name, version=version, score=score, alias=alias, promoted=promote,
                     champion_version=version if promote else previous_version,
                     previous_version=previous_version, previous_score=previous_score)


def _describe_evaluation(mlclient, name: str, version: str, score: float, score_key: str) -> None:
    """Put the held-out score and the evaluation's MLflow run (the active run, when there is one: its id, a link and
    its metrics) in the version's model card, and tag the version with the run id."""
    import mlflow

    from aslfs.serving import card

    active = mlflow.active_run()
    run = mlclient.get_run(active.info.run_id) if active is not None else None
    if run is not None:
        mlclient.set_model_version_tag(name, version, EVAL_RUN_TAG, run.info.run_id)
    described = mlclient.get_model_version(name, version).description or ""
    section = card.evaluation_section(score, score_key, run)
    mlclient.update_model_version(name, version, description=card.with_evaluation(described, section))


def resolve_tflite(model: str | Path, dst: str | Path | None = None) -> Path:
    """A local ``.tflite`` path from a submission folder, a ``.tflite`` file or an MLflow model URI.

    Args:
        model: a folder containing ``model.tflite``, a ``.tflite`` file, or a URI such as
            ``models:/asl-fingerspelling@champion``, ``models:/asl-fingerspelling/3`` or ``runs:/<id>/tflite-model``.
        dst: where to download a URI's artifacts (a temporary folder when ``None``).
    """
    text = str(model)
    if "://" in text or text.startswith(("models:/", "runs:/")):
        import mlflow

        client()  # sets the store URIs
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text, dst_path=None if dst is None else str(dst)))
        except Exception as err:
            raise DataError(f"{text}: cannot download the model ({str(err).splitlines()[0]})") from None
        found = sorted(local.rglob("*.tflite"))
        if not found:
            raise DataError(f"{text}: the model has no .tflite file")
        return found[0]
    path = Path(model)
    if path.is_dir():
        path = path / "model.tflite"
    if not path.is_file():
        raise DataError(f"{path}: TFLite model not found")
    return path
