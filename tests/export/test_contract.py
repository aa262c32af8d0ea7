"""The exported file's contract (anchors.md §A.5, docs/reference.md §7.2): signature, names, dtypes, shapes, lengths
1-1,000, builtin ops only, and the two files of a submission."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aslfs.landmarks import SELECTED_COLUMNS
from aslfs.vocab import DUMMY_PHRASE, VOCAB_SIZE, encode


def test_submission_folder_holds_exactly_the_two_files(exported):
    folder = Path(exported.tflite_path).parent
    assert sorted(p.name for p in folder.iterdir()) == ["inference_args.json", "model.tflite"]
    assert json.loads((folder / "inference_args.json").read_text()) == {"selected_columns": list(SELECTED_COLUMNS)}
    assert exported.bytes == (folder / "model.tflite").stat().st_size
    assert exported.signatures == ["serving_default", "diagnostics"]


def test_builtin_ops_only(exported):
    data = Path(exported.tflite_path).read_bytes()
    assert b"Flex" not in data
    from aslfs.export.tflite import find_flex_ops

    assert find_flex_ops(data) == []
    assert find_flex_ops(b"xx FlexBitwiseAnd yy") == ["FlexBitwiseAnd"]


def test_signature_names_dtypes_and_shapes(exported):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=exported.tflite_path)
    signatures = interpreter.get_signature_list()
    assert signatures["serving_default"] == {"inputs": ["inputs"], "outputs": ["outputs"]}
    assert sorted(signatures["diagnostics"]["outputs"]) == ["confidence", "dummy", "outputs"]
    runner = interpreter.get_signature_runner("serving_default")
    (inp,) = runner.get_input_details().values()
    (out,) = runner.get_output_details().values()
    assert inp["dtype"] == np.float32 and list(inp["shape_signature"]) == [-1, 390]
    assert out["dtype"] == np.float32 and list(out["shape_signature"]) == [-1, VOCAB_SIZE]


@pytest.mark.parametrize("length", [1, 2, 14, 15, 16, 63, 64, 65, 383, 384, 385, 1000])
def test_any_length_runs_and_rows_follow_the_contract(recognizer, length):
    rng = np.random.default_rng(length)
    frames = rng.random((length, 390), dtype=np.float32)
    frames[:, :21] = np.nan  # a missing hand (x of the left hand)
    rows = recognizer.logits(frames)
    assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == VOCAB_SIZE
    assert 0 <= rows.shape[0] <= 32
    assert np.isfinite(rows).all()
    if length < 15:
        assert recognizer.predict(frames) == DUMMY_PHRASE
        np.testing.assert_array_equal(rows, np.eye(VOCAB_SIZE, dtype=np.float32)[encode(DUMMY_PHRASE)])


def test_all_nan_and_empty_sequences(recognizer):
    rows = recognizer.logits(np.full((40, 390), np.nan, np.float32))
    assert np.isfinite(rows).all() and rows.shape[1] == VOCAB_SIZE
    assert recognizer.predict(np.zeros((0, 390), np.float32)) == DUMMY_PHRASE


def test_runtime_rejects_wrong_input_width(recognizer):
    from aslfs.errors import DataError

    with pytest.raises(DataError, match=r"\(T, 390\)"):
        recognizer.predict(np.zeros((20, 1629), np.float32))


def test_rows_to_text_reads_like_the_harness():
    from aslfs.export.runtime import rows_to_text

    rows = np.eye(VOCAB_SIZE, dtype=np.float32)[[encode("a")[0], 59, 60, 61, 62, encode("b")[0]]]
    assert rows_to_text(rows) == "ab"
    assert rows_to_text(np.zeros((0, VOCAB_SIZE), np.float32)) == ""
