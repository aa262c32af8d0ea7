"""A tiny TFLite "submission" for plumbing tests (registry, pyfunc, predict, evaluate): its phrase spells the frame
count, so a test can tell which sequence's frames reached the model without training anything.

``probe_phrase(T, offset)`` = the last three digits of ``T + offset``, least significant first (T = 123 → "321").
The file has the contract's signature (``inputs`` [T, 390] → ``outputs`` [3, 63]) and, like the real export, a
``diagnostics`` signature (confidence 1, rule never fires). Conversion takes a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path


def probe_phrase(frames: int, offset: int = 0) -> str:
    n = frames + offset
    return f"{n % 10}{n // 10 % 10}{n // 100 % 10}"


def write_probe_submission(folder: str | Path, offset: int = 0) -> Path:
    """Write ``folder/model.tflite`` and ``folder/inference_args.json``; returns the folder."""
    from keras import ops

    from aslfs.export.tflite import convert_endpoints
    from aslfs.landmarks import inference_args
    from aslfs.vocab import CHAR_TO_ID

    digit_ids = [CHAR_TO_ID[str(d)] for d in range(10)]

    def rows(inputs):
        n = ops.shape(inputs)[0] + offset
        digits = ops.stack([n % 10, n // 10 % 10, n // 100 % 10])
        ids = ops.take(ops.convert_to_tensor(digit_ids, "int32"), digits)
        # a data dependency on the values too, so the input is really read (NaN-safe: adds 0)
        zero = ops.sum(ops.where(ops.isnan(inputs), 0.0, inputs)) * 0.0
        return ops.one_hot(ids, 63, dtype="float32") + zero

    flatbuffer, _ = convert_endpoints({
        "serving_default": lambda inputs: {"outputs": rows(inputs)},
        "diagnostics": lambda inputs: {"outputs": rows(inputs), "confidence": ops.ones((1,)), "dummy": ops.zeros((1,))},
    })
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").write_bytes(flatbuffer)
    (folder / "inference_args.json").write_text(json.dumps(inference_args()))
    return folder
