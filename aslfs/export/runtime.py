"""A small runner for the exported TFLite file, with LiteRT (``ai_edge_litert``), the way the Kaggle harness calls it.

The harness (anchors.md §A.5) calls the ``serving_default`` signature as ``runner(inputs=frames)`` with float32
``(frames, 390)`` in ``SELECTED_COLUMNS`` order (NaNs as they are), reads ``"outputs"`` ``(L, C)``, takes the argmax
of each row and maps ids through the 59-character table, ids >= 59 reading as nothing. :class:`TFLiteRecognizer`
does exactly that; ``predict``, ``evaluate``, the MLflow pyfunc and the benchmarks all use it, so every number the
project reports comes from the file a user would submit.

Files written by :mod:`aslfs.export.tflite` also carry a ``diagnostics`` signature (same weights, no post-processing):
``outputs`` = the raw greedy rows, ``confidence`` = the ensemble's sigmoid confidence, ``dummy`` = 1 where the graph's
post-processing rule replaces the phrase. :meth:`TFLiteRecognizer.diagnose` uses it to report the raw and the
post-processed strings from one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aslfs.errors import DataError
from aslfs.landmarks import SELECTED_COLUMNS
from aslfs.vocab import DUMMY_PHRASE, decode

SERVING_SIGNATURE = "serving_default"
DIAGNOSTICS_SIGNATURE = "diagnostics"
NUM_INPUT_COLUMNS = len(SELECTED_COLUMNS)  # 390


def rows_to_text(rows: np.ndarray) -> str:
    """The Kaggle harness's reading of an ``outputs`` array: argmax per row, ids >= 59 read as nothing."""
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise ValueError(f"outputs must be 2-D (L, C), got shape {rows.shape}")
    if rows.shape[0] == 0:
        return ""
    return decode(np.argmax(rows, axis=1))


@dataclass(frozen=True)
class Diagnosis:
    """One sequence through the ``diagnostics`` signature.

    Attributes:
        raw: the ensemble's greedy phrase without post-processing.
        phrase: the phrase after the dummy rule (what ``serving_default`` returns).
        confidence: sigmoid of the averaged confidence logits (NaN when the file has no ``diagnostics`` signature).
        frames: the raw frame count T.
        dummy: whether the post-processing rule replaced the phrase.
    """

    raw: str
    phrase: str
    confidence: float
    frames: int
    dummy: bool


class TFLiteRecognizer:
    """Runs an exported ``model.tflite`` on one sequence at a time.

    Args:
        path: str or Path. The ``.tflite`` file.
        threads: int. Interpreter threads. Defaults to ``2`` (the Kaggle CPU kernel).

    Example:
        >>> rec = TFLiteRecognizer("artifacts/submission/model.tflite")
        >>> rec.predict(frames)  # frames float32 (T, 390)
        'hello world'
    """

    def __init__(self, path, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: TFLite model not found")
        self.threads = int(threads)
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
        signatures = self.interpreter.get_signature_list()
        if SERVING_SIGNATURE not in signatures:
            raise DataError(f"{self.path}: no '{SERVING_SIGNATURE}' signature (found {sorted(signatures)})")
        self.signatures = signatures
        self._runners: dict[str, object] = {}

    def _runner(self, name: str):
        if name not in self._runners:
            self._runners[name] = self.interpreter.get_signature_runner(name)
        return self._runners[name]

    @property
    def has_diagnostics(self) -> bool:
        return DIAGNOSTICS_SIGNATURE in self.signatures

    @staticmethod
    def _check(frames) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != NUM_INPUT_COLUMNS:
            raise DataError(f"frames must be (T, {NUM_INPUT_COLUMNS}) in selected_columns order, got shape {frames.shape}")
        return np.ascontiguousarray(frames)

    def logits(self, frames) -> np.ndarray:
        """``serving_default`` output rows: float32 ``(L, C)`` for float32 frames ``(T, 390)``."""
        return np.array(self._runner(SERVING_SIGNATURE)(inputs=self._check(frames))["outputs"])

    def predict(self, frames) -> str:
        """The phrase the Kaggle harness would read for one sequence ``(T, 390)``."""
        return rows_to_text(self.logits(frames))

    def diagnose(self, frames) -> Diagnosis:
        """Raw and post-processed phrase and confidence of one sequence, from the ``diagnostics`` signature.

        Files without that signature fall back to ``serving_default`` (raw = post-processed, confidence NaN).
        """
        frames = self._check(frames)
        t = int(frames.shape[0])
        if not self.has_diagnostics:
            phrase = self.predict(frames)
            return Diagnosis(raw=phrase, phrase=phrase, confidence=float("nan"), frames=t, dummy=phrase == DUMMY_PHRASE)
        out = self._runner(DIAGNOSTICS_SIGNATURE)(inputs=frames)
        raw = rows_to_text(np.asarray(out["outputs"]))
        confidence = float(np.asarray(out["confidence"]).reshape(-1)[0])
        dummy = bool(np.asarray(out["dummy"]).reshape(-1)[0] > 0.5)
        return Diagnosis(raw=raw, phrase=DUMMY_PHRASE if dummy else raw, confidence=confidence, frames=t, dummy=dummy)
