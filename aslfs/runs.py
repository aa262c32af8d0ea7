"""Training runs: the one place that knows a run's layout, how run arguments expand and how a run's model loads.

A **run folder** is the output of one training::

    model.keras          the trained model (no optimizer): what export, OOF and evaluation load
    metrics.json         last evaluation + run facts (round, fold, seed, ...)
    history.csv          one row per epoch
    val_predictions.csv  the last evaluation's predictions of the validation fold
    checkpoint/          the resume point (see :mod:`aslfs.training.checkpoint`)

A **standalone model file** (``*.keras``, e.g. one written by ``aslfs import-checkpoint``) is a run with a model
only: no metrics, no history, no predictions.

Stages that consume several runs (OOF, export, evaluate) take run arguments through :func:`expand_runs`: a run
folder, a folder of run folders (``models/round2``, whatever the number of seeds; in name order) or a ``.keras``
file. Anything else (a missing path, a folder without runs) is a one-line :class:`~aslfs.errors.DataError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aslfs.errors import DataError

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
VAL_PREDICTIONS_FILE = "val_predictions.csv"
CHECKPOINT_DIR = "checkpoint"
MODEL_SUFFIX = ".keras"


@dataclass(frozen=True)
class Run:
    """One training run: a run folder (``path`` holds ``model.keras``) or a standalone ``.keras`` file (``path``)."""

    path: Path

    @property
    def standalone(self) -> bool:
        """A bare model file: no metrics, history or predictions."""
        return self.path.suffix == MODEL_SUFFIX and not self.path.is_dir()

    @property
    def name(self) -> str:
        """The run folder's name, or the model file's stem."""
        return self.path.stem if self.standalone else self.path.name

    @property
    def model_file(self) -> Path:
        return self.path if self.standalone else self.path / MODEL_FILE

    def file(self, name: str) -> Path | None:
        """``<run>/<name>``, or ``None`` for a standalone model file (it has no run folder)."""
        return None if self.standalone else self.path / name

    @property
    def metrics_file(self) -> Path | None:
        return self.file(METRICS_FILE)

    @property
    def history_file(self) -> Path | None:
        return self.file(HISTORY_FILE)

    @property
    def val_predictions_file(self) -> Path | None:
        return self.file(VAL_PREDICTIONS_FILE)

    def metrics(self, required: bool = False) -> dict:
        """The run's ``metrics.json``; ``{}`` when it has none (``required``: a one-line error instead)."""
        path = self.metrics_file
        if path is None or not path.is_file():
            if required:
                raise DataError(f"{self.path}: not a training output (no {METRICS_FILE})")
            return {}
        try:
            facts = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
        if not isinstance(facts, dict):
            raise DataError(f"{path}: not a JSON object")
        return facts

    @property
    def fold(self) -> int | None:
        """The fold the run was validated on (``metrics.json``'s ``fold``; -1 = a full fit), ``None`` if unknown."""
        fold = self.metrics().get("fold")
        return None if fold is None else int(fold)

    def history(self):
        """``history.csv`` as a DataFrame, or ``None`` when the run has none (a standalone model file)."""
        import pandas as pd

        path = self.history_file
        if path is None or not path.is_file():
            return None
        return pd.read_csv(path)

    def load_model(self):
        """The run's Keras model (not compiled), loaded with Keras' safe mode on: a file carrying Python code
        (a ``Lambda`` layer) is refused."""
        import keras

        import aslfs.models.fingerspeller  # noqa: F401  (registers the custom classes for deserialisation)

        file = self.model_file
        if not file.is_file():
            raise DataError(f"{file}: trained model not found")
        try:
            return keras.saving.load_model(file, compile=False, safe_mode=True)
        except (OSError, ValueError, TypeError) as err:
            raise DataError(f"{file}: cannot load the model ({str(err).splitlines()[0][:200]})") from None


def as_run(run: Run | str | Path) -> Run:
    """``run`` itself, or the run at the path ``run`` (not expanded: see :func:`expand_runs`)."""
    return run if isinstance(run, Run) else Run(Path(run))


def _is_run_folder(path: Path) -> bool:
    return (path / MODEL_FILE).is_file()


def expand_runs(paths: Iterable[str | Path]) -> list[Run]:
    """The runs named by ``paths``, in argument order, de-duplicated.

    Each path is a run folder (holds ``model.keras``), a folder of run folders (stands for them, in name order) or
    a standalone ``.keras`` model file.

    Raises:
        DataError: a path does not exist, or is a folder with no run in it or in its sub-folders, or a file that
            is not a ``.keras`` model (one line naming the path).
    """
    out: list[Run] = []
    for path in map(Path, paths):
        if path.is_file():
            if path.suffix != MODEL_SUFFIX:
                raise DataError(f"{path}: not a run folder or a {MODEL_SUFFIX} model file")
            out.append(Run(path))
        elif path.is_dir():
            if _is_run_folder(path):
                out.append(Run(path))
                continue
            found = sorted(d for d in path.iterdir() if d.is_dir() and _is_run_folder(d))
            if not found:
                raise DataError(f"{path}: no training run here (no {MODEL_FILE} in it or in its sub-folders)")
            out.extend(Run(d) for d in found)
        else:
            raise DataError(f"{path}: not found (expected a run folder with {MODEL_FILE}, a folder of run folders or "
                            f"a {MODEL_SUFFIX} file)")
    return list(dict.fromkeys(out))


def load_models(runs: Iterable[Run]) -> list:
    """Every run's model (:meth:`Run.load_model`), in order; at least one."""
    models = [run.load_model() for run in runs]
    if not models:
        raise DataError("no trained models given")
    return models
