"""Atomic training checkpoints: ``<out_dir>/checkpoint/{last.keras, state.json}``.

``last.keras`` is the whole training model (weights + optimizer state: moments, micro-step counter, gradient
accumulators, loss scale); ``state.json`` is what the loop needs besides (epochs done, best score, MLflow run id,
seed, history). Both are replaced together, never one without the other:

1. write both into ``checkpoint.new/`` (``state.json`` last, so a complete ``state.json`` means a complete directory),
2. rename ``checkpoint/`` → ``checkpoint.old/``, 3. rename ``checkpoint.new/`` → ``checkpoint/``, 4. delete
   ``checkpoint.old/``.

A kill at any point leaves either ``checkpoint/`` or, between 2 and 3, ``checkpoint.old/`` plus a complete
``checkpoint.new/``; :func:`recover` (called by :func:`load_state`) restores the newest complete one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aslfs import atomic
from aslfs.runs import CHECKPOINT_DIR

MODEL_FILE = "last.keras"
STATE_FILE = "state.json"


@dataclass
class TrainState:
    """Bookkeeping stored next to the weights.

    Attributes:
        epoch: epochs completed (the next run starts at this 0-based epoch).
        seed: the run's seed.
        mlflow_run_id: the MLflow run to resume (None when not tracked).
        best_score: best validation score so far (None before the first evaluation).
        history: one dict per evaluation (epoch, losses, score, ...).
        resumes: how many times the run has been resumed.
        extra: free-form (e.g. the resolved config hash).
    """

    epoch: int = 0
    seed: int = 0
    mlflow_run_id: str | None = None
    best_score: float | None = None
    history: list[dict] = field(default_factory=list)
    resumes: int = 0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainState":
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _complete(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file() and (directory / MODEL_FILE).is_file()


def recover(out_dir: str | Path) -> Path | None:
    """Bring ``<out_dir>/checkpoint`` back to a consistent state after a kill; returns it, or None if there is none."""
    out_dir = Path(out_dir)
    cur, new, old = (out_dir / CHECKPOINT_DIR, out_dir / f"{CHECKPOINT_DIR}.new", out_dir / f"{CHECKPOINT_DIR}.old")
    if not cur.exists():
        if new.exists() and _complete(new):
            os.rename(new, cur)
        elif old.exists() and _complete(old):
            os.rename(old, cur)
    for stale in (new, old):
        if stale.exists():
            shutil.rmtree(stale, ignore_errors=True)
    return cur if _complete(cur) else None


def save_checkpoint(out_dir: str | Path, model, state: TrainState) -> Path:
    """Save ``model`` (with its optimizer) and ``state`` atomically under ``<out_dir>/checkpoint``."""
    out_dir = Path(out_dir)
    cur, new, old = (out_dir / CHECKPOINT_DIR, out_dir / f"{CHECKPOINT_DIR}.new", out_dir / f"{CHECKPOINT_DIR}.old")
    if new.exists():
        shutil.rmtree(new)
    new.mkdir(parents=True)
    model.save(new / MODEL_FILE)
    with open(new / MODEL_FILE, "rb") as fh:
        os.fsync(fh.fileno())
    atomic.write_text(new / STATE_FILE, state.to_json())
    _fsync_dir(new)
    if old.exists():
        shutil.rmtree(old)
    if cur.exists():
        os.rename(cur, old)
    os.rename(new, cur)
    _fsync_dir(out_dir)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    return cur


def save_in_memory(model) -> int:
    """Save ``model`` as :func:`save_checkpoint` does, into memory; returns the byte count. For the processes of a
    multi-process training other than the chief: saving reads the replicated variables through computations that
    involve every process, so each one saves in step with the chief, which alone writes."""
    import io

    from keras.src.saving import saving_lib  # model.save takes only paths; the library also takes a file object

    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return buffer.tell()


def load_state(out_dir: str | Path, read_only: bool = False) -> TrainState | None:
    """The saved :class:`TrainState`, or None when there is no complete checkpoint. ``read_only`` reads
    ``checkpoint/`` as it is, without :func:`recover` (the processes of a multi-process training other than the one
    that recovered it)."""
    cur = Path(out_dir) / CHECKPOINT_DIR if read_only else recover(out_dir)
    if cur is None or not _complete(cur):
        return None
    return TrainState.from_json((cur / STATE_FILE).read_text())


def model_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / CHECKPOINT_DIR / MODEL_FILE


def restore_weights(out_dir: str | Path, model) -> None:
    """Load the checkpoint's weights and optimizer state into ``model`` (already compiled, optimizer built)."""
    model.load_weights(model_path(out_dir))


def load_initial_weights(net, source: str | os.PathLike, where: str) -> int:
    """Start ``net`` (a built :class:`~aslfs.models.fingerspeller.FingerSpeller`) from the weights of another model
    (fine-tuning): a ``.keras`` file (``aslfs import-checkpoint``'s output) or a run folder (its ``model.keras``).

    Every weight of ``net`` must be in the file under the same path with the same shape, and the file must hold no
    other weight: the two architectures are the same, whatever their dropout or training settings. Weights are cast to
    ``net``'s variable dtypes. Returns the number of tensors set.

    Raises:
        DataError: one line naming ``where`` (the params key), the file and the first difference; ``net`` is unchanged.
    """
    import keras

    from aslfs.errors import DataError
    from aslfs.runs import Run

    run = Run(Path(source))
    path = run.model_file
    if not (run.standalone or path.is_file()):
        raise DataError(f"{where}: {source}: neither a .keras model file nor a run folder holding {path.name}")
    try:
        donor = run.load_model()
    except DataError as err:
        raise DataError(f"{where}: {err}") from None
    given = {w.path: w for w in donor.weights}
    wanted = {w.path: w for w in net.weights}
    missing = [p for p in wanted if p not in given]
    extra = [p for p in given if p not in wanted]
    if missing or extra:
        detail = (f"lacks {len(missing)} weight(s) of this round's model, first '{missing[0]}'" if missing
                  else f"holds {len(extra)} weight(s) this round's model lacks, first '{extra[0]}'")
        raise DataError(f"{where}: {path}: another architecture ({detail}); set the round's preset and "
                        "model_overrides to the file's")
    for key, variable in wanted.items():
        if tuple(given[key].shape) != tuple(variable.shape):
            raise DataError(f"{where}: {path}: weight '{key}' has shape {tuple(given[key].shape)}, this round's "
                            f"model expects {tuple(variable.shape)}")
    for key, variable in wanted.items():
        variable.assign(keras.ops.cast(given[key].value, variable.dtype))
    return len(wanted)
