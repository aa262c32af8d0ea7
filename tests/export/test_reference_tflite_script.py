"""The TFLite parity script's own logic (sequence generator, row comparison); the reference is not needed."""

import importlib.util
from pathlib import Path

import numpy as np

from aslfs.landmarks import LEFT_HAND, RIGHT_HAND
from aslfs.vocab import CHAR_TO_ID, END_ID, VOCAB_SIZE

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "reference_tflite.py"
_spec = importlib.util.spec_from_file_location("reference_tflite", _PATH)
reference_tflite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference_tflite)


def _rows(text, scale=5.0):
    ids = [CHAR_TO_ID[c] for c in text]
    return np.eye(VOCAB_SIZE, dtype=np.float32)[ids] * scale


def test_sequences_cover_every_branch_of_the_graph():
    seqs = reference_tflite.generate_sequences(60, seed=0)
    lengths = [len(s) for s in seqs]
    assert len(seqs) == 60
    assert all(s.shape[1] == 390 and s.dtype == np.float32 for s in seqs)
    assert sum(t < 15 for t in lengths) == 3  # dummy rule
    assert sum(15 <= t < 384 for t in lengths) >= 45
    assert sum(t > 384 for t in lengths) == 7  # resized
    for s in seqs:
        x = s.reshape(len(s), 3, -1)
        left, right = np.isnan(x[:, 0, LEFT_HAND]).all(), np.isnan(x[:, 0, RIGHT_HAND]).all()
        assert left != right  # exactly one hand missing throughout
        assert not np.isnan(x[:, :, :40]).any()  # lips present
    again = reference_tflite.generate_sequences(60, seed=0)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(seqs, again))


def test_compare_rows_counts_strings_and_stops_the_logit_diff_at_the_first_different_token():
    ref = [_rows("abc"), _rows("abd"), _rows("xy")]
    ours = [_rows("abc") + 0.01, _rows("abe"), _rows("xy")]
    ours[1][2, CHAR_TO_ID["d"]] = 4.0  # the third token differs: 'e' (5.0) beats 'd' (4.0)
    ours[2] = np.concatenate([ours[2], _rows("z")])  # a row more
    res = reference_tflite.compare_rows(ref, ours, [20, 30, 40])
    assert res["sequences"] == 3
    assert res["identical_strings"] == 1
    assert res["identical_pct"] == 33.33
    assert res["distinct_reference_strings"] == 3
    diffs = [p["max_logit_diff"] for p in res["per_sequence"]]
    assert np.isclose(diffs[0], 0.01, atol=1e-6)
    assert diffs[1] == 5.0  # rows 0-2 compared; row 2 differs by 5 at 'e'
    assert diffs[2] == 0.0  # rows of the shared prefix agree
    assert res["max_logit_diff"] == 5.0
    assert res["per_sequence"][2]["rows"] == [2, 3]
    assert END_ID > max(CHAR_TO_ID.values())


def test_a_33rd_row_of_the_reference_counts_only_outside_the_contract():
    ref, ours = [_rows("a" * 33)], [_rows("a" * 32)]
    res = reference_tflite.compare_rows(ref, ours, [100])
    assert res["identical_strings"] == 0
    assert res["identical_within_contract"] == 1
    assert res["max_logit_diff"] == 0.0
