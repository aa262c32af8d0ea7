"""The MLflow pyfunc flavour of the exported model: it runs the TFLite file, nothing else.

``mlflow.pyfunc.load_model("models:/asl-fingerspelling@champion").predict(frames)`` returns the phrases the Kaggle
harness would read from ``model.tflite`` (through :class:`aslfs.export.runtime.TFLiteRecognizer`). Accepted inputs:

- a float array ``(T, 390)``: one sequence in ``selected_columns`` order → a list with one phrase;
- a list (or tuple) of such arrays → one phrase each;
- a ``pandas.DataFrame`` with the 390 ``selected_columns`` (extra columns ignored): one sequence, or one per
  ``sequence_id`` when that column is present (in order of first appearance).
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np

def split_sequences(model_input) -> list[np.ndarray]:
    """The pyfunc input as a list of float32 ``(T, 390)`` arrays (see the module docstring for the accepted forms)."""
    import pandas as pd

    from aslfs.errors import DataError
    from aslfs.landmarks import SELECTED_COLUMNS

    if isinstance(model_input, pd.DataFrame):
        columns = list(SELECTED_COLUMNS)
        missing = [c for c in SELECTED_COLUMNS if c not in model_input.columns]
        if missing:
            raise DataError(f"input DataFrame lacks {len(missing)} selected columns (first: {missing[0]})")
        if "sequence_id" in model_input.columns:
            return [
                group[columns].to_numpy(np.float32)
                for _, group in model_input.groupby("sequence_id", sort=False)
            ]
        return [model_input[columns].to_numpy(np.float32)]
    if isinstance(model_input, (list, tuple)):
        return [np.asarray(x, dtype=np.float32) for x in model_input]
    array = np.asarray(model_input, dtype=np.float32)
    if array.ndim == 2:
        return [array]
    raise DataError(f"expected frames (T, 390), a list of them or a DataFrame; got an array of shape {array.shape}")


class TFLitePhraseModel(mlflow.pyfunc.PythonModel):
    """Pyfunc that loads the ``model.tflite`` artifact and maps landmark frames to phrases.

    ``model_config`` may set ``threads`` (interpreter threads, default 2).
    """

    def load_context(self, context):
        from aslfs.export.runtime import TFLiteRecognizer

        threads = int((context.model_config or {}).get("threads", 2))
        self.recognizer = TFLiteRecognizer(context.artifacts["model"], threads=threads)

    def predict(self, context, model_input, params=None):
        return [self.recognizer.predict(frames) for frames in split_sequences(model_input)]
