"""The MLflow pyfunc flavour of the exported model: it runs the TFLite file, nothing else.

``mlflow.pyfunc.load_model("models:/asl-fingerspelling@champion").predict(frames)`` returns the phrases the Kaggle
harness would read from ``model.tflite`` (through :class:`aslfs.export.runtime.TFLiteRecognizer`). Accepted inputs:

- one sequence: a float array ``(n_frames, 390)`` in ``selected_columns`` order, or the same as nested lists (JSON
  ``null`` or NaN for a missing coordinate) → a list with one phrase;
- a batch: a list (or tuple) of such sequences, lengths may differ, or a float array ``(batch, n_frames, 390)``
  → one phrase each, in order;
- a ``pandas.DataFrame`` with the 390 ``selected_columns`` (extra columns ignored): one sequence, or one per
  ``sequence_id`` when that column is present (in order of first appearance).

Malformed input raises :class:`ServingInputError`, one line naming the sequence and the problem; MLflow's scoring
server (``aslfs serve``) answers it with HTTP 400 and that line. The logged signature
(:func:`aslfs.serving.card.model_signature`) makes the server hand the request's ``inputs`` to
:meth:`TFLitePhraseModel.predict` as parsed JSON, so ragged batches arrive intact.
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST

from aslfs.errors import DataError


class ServingInputError(DataError, MlflowException):
    """Malformed model input. An :class:`MlflowException` with a 400 code, so the scoring server answers HTTP 400
    without a stack trace; its message stays the one line (the server otherwise prefixes the whole request)."""

    def __init__(self, message: str):
        self._line = str(message)
        MlflowException.__init__(self, self._line, error_code=BAD_REQUEST)

    @property
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, value) -> None:  # the scoring server rewrites it to include the request: keep the line
        pass


def _is_sequence(value) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim >= 1)


def _is_batch(items) -> bool:
    """Whether a non-empty list holds sequences (each a list of frames) rather than frames (each a list of numbers)."""
    for item in items:
        if isinstance(item, np.ndarray):
            if item.ndim >= 2:
                return True
        elif isinstance(item, (list, tuple)) and any(_is_sequence(x) for x in item):
            return True
    return False


def _frames(index: int, sequence, width: int) -> np.ndarray:
    """One sequence as a float32 ``(n_frames, width)`` array, or a :class:`ServingInputError` naming ``index``."""
    where = f"sequence {index}"
    if isinstance(sequence, (list, tuple)):
        if not sequence:
            raise ServingInputError(f"{where}: no frames (expected [n_frames, {width}] numbers)")
        for k, row in enumerate(sequence):
            if not _is_sequence(row):
                raise ServingInputError(f"{where}: frame {k} is {type(row).__name__}, expected a list of {width} numbers")
            if len(row) != width:
                raise ServingInputError(f"{where}: frame {k} has {len(row)} values, expected {width}")
    elif not isinstance(sequence, np.ndarray):
        raise ServingInputError(f"{where}: expected [n_frames, {width}] numbers, got {type(sequence).__name__}")
    try:
        array = np.asarray(sequence, dtype=np.float32)
    except (TypeError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ServingInputError(f"{where}: values must be numbers or null ({reason})") from None
    if array.ndim != 2 or array.shape[1] != width:
        raise ServingInputError(f"{where}: expected frames [n_frames, {width}], got shape {list(array.shape)}")
    if array.shape[0] == 0:
        raise ServingInputError(f"{where}: no frames (expected [n_frames, {width}] numbers)")
    return array


def split_sequences(model_input) -> list[np.ndarray]:
    """The pyfunc input as a list of float32 ``(n_frames, 390)`` arrays (see the module docstring for the accepted
    forms); malformed input raises :class:`ServingInputError` naming the sequence index and the problem."""
    import pandas as pd

    from aslfs.landmarks import SELECTED_COLUMNS

    width = len(SELECTED_COLUMNS)
    if isinstance(model_input, pd.DataFrame):
        columns = list(SELECTED_COLUMNS)
        missing = [c for c in SELECTED_COLUMNS if c not in model_input.columns]
        if missing:
            raise ServingInputError(f"input DataFrame lacks {len(missing)} selected columns (first: {missing[0]})")
        if model_input.empty:
            raise ServingInputError("input DataFrame has no rows")
        if "sequence_id" in model_input.columns:
            groups = [group[columns] for _, group in model_input.groupby("sequence_id", sort=False)]
        else:
            groups = [model_input[columns]]
        try:
            return [group.to_numpy(np.float32) for group in groups]
        except (TypeError, ValueError) as err:
            raise ServingInputError(f"input DataFrame: values must be numbers ({str(err).splitlines()[0]})") from None
    if isinstance(model_input, np.ndarray):
        if model_input.ndim == 3:
            return [_frames(i, seq, width) for i, seq in enumerate(model_input)]
        return [_frames(0, model_input, width)]
    if isinstance(model_input, (list, tuple)):
        if len(model_input) == 0:
            raise ServingInputError(f"empty input: expected one sequence [n_frames, {width}] or a list of them")
        if _is_batch(model_input):
            return [_frames(i, seq, width) for i, seq in enumerate(model_input)]
        return [_frames(0, model_input, width)]
    raise ServingInputError(f"expected one sequence [n_frames, {width}], a list of them or a DataFrame; "
                            f"got {type(model_input).__name__}")


class TFLitePhraseModel(mlflow.pyfunc.PythonModel):
    """Pyfunc that loads the ``model.tflite`` artifact and maps landmark frames to phrases.

    ``model_config`` may set ``threads`` (interpreter threads, default 2).

    ``predict`` has no type hint on purpose: no MLflow type hint describes its input (an array, nested lists of
    ragged sequences or a DataFrame), and a hint would make MLflow validate and convert the input before
    :func:`split_sequences` sees it (a ``list[...]`` hint rejects arrays and keeps one DataFrame column). MLflow's
    hint-based validation is therefore switched off for this class, which also drops its "Add type hints" warning.
    """

    _skip_type_hint_validation = True  # MLflow's switch (also used by its ChatModel): no hint-based validation

    def load_context(self, context):
        from aslfs.export.runtime import TFLiteRecognizer

        threads = int((context.model_config or {}).get("threads", 2))
        self.recognizer = TFLiteRecognizer(context.artifacts["model"], threads=threads)

    def predict(self, context, model_input, params=None):
        return [self.recognizer.predict(frames) for frames in split_sequences(model_input)]
