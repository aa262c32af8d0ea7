"""The shared tables: vocabulary, the 130 landmarks, their parts and the mirror permutation."""

import json

import numpy as np
import pytest

from aslfs import landmarks as L
from aslfs import vocab as V


def test_vocabulary_ids():
    assert V.NUM_CHARS == 59 and V.VOCAB_SIZE == 63
    assert (V.CHAR_TO_ID[" "], V.CHAR_TO_ID["0"], V.CHAR_TO_ID["a"], V.CHAR_TO_ID["~"]) == (0, 15, 32, 58)
    assert V.encode(V.DUMMY_PHRASE) == [17, 0, 32, 12, 36, 0, 12, 32, 49, 46, 36]
    assert V.decode([32, 59, 60, 33, 61, 62]) == "ab"
    assert V.decode_until_end([32, 33, 61, 34]) == "ab"


def test_target_ids_truncate_and_pad():
    t = V.target_ids("abc")
    assert t.tolist()[:5] == [32, 33, 34, 61, 59] and len(t) == 33
    long = V.target_ids("a" * 40)
    assert long[31] == 32 and long[32] == 61


def test_out_of_vocabulary_is_named():
    with pytest.raises(ValueError, match="'A'"):
        V.encode("hello A")
    assert V.invalid_chars("AbB") == ["A", "B"]


def test_landmark_order_matches_reference():
    assert len(L.LANDMARKS) == 130 and len(L.SELECTED_COLUMNS) == 390
    assert L.SELECTED_COLUMNS[:3] == ("x_face_0", "x_face_61", "x_face_185")
    assert L.SELECTED_COLUMNS[129] == "x_pose_21" and L.SELECTED_COLUMNS[130] == "y_face_0"
    assert L.LANDMARKS[40] == "left_hand_0" and L.LANDMARKS[61] == "right_hand_0"
    assert L.LANDMARKS[118] == "pose_12" and L.LANDMARKS[124] == "pose_11"
    assert len(L.ALL_COLUMNS) == 1629 and L.ALL_COLUMNS[468] == "x_left_hand_0"
    for i, c in zip(L.SELECTED_IN_ALL, L.SELECTED_COLUMNS):
        assert L.ALL_COLUMNS[i] == c


def test_parts():
    assert [len(L.PARTS[p]) for p in ("left_hand", "right_hand", "face", "pose")] == [21, 21, 76, 12]
    assert sorted(np.concatenate(list(L.PARTS.values())).tolist()) == list(range(130))
    assert L.FACE[:3].tolist() == [0, 1, 2] and L.FACE[40] == 82  # lips, then nose
    assert np.bincount(L.PART_TYPE).tolist() == [0, 21, 21, 76, 12]
    assert L.FINGERS.shape == (10, 4) and L.FINGERS[0].tolist() == [41, 42, 43, 44]
    assert L.FINGERS[9].tolist() == [78, 79, 80, 81]


def test_mirror_permutation():
    f = L.FLIP_INDEX
    assert (f[f] == np.arange(130)).all(), "mirroring twice is the identity"
    expected_head = [0, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 19, 18]  # docs/reference.md §3.1
    assert f[:13].tolist() == expected_head
    assert (f[L.LEFT_HAND] == L.RIGHT_HAND).all() and (f[L.RIGHT_HAND] == L.LEFT_HAND).all()
    assert set(f[L.LIPS].tolist()) == set(L.LIPS.tolist()), "lips map to lips"
    assert (f[L.RIGHT_EYE] == L.LEFT_EYE).all()
    assert f[82:86].tolist() == [82, 83, 85, 84]
    assert f[118:].tolist() == list(range(124, 130)) + list(range(118, 124))
    fixed = [L.LANDMARKS[i] for i in range(40) if f[i] == i]
    assert fixed == ["face_0", "face_17", "face_13", "face_14"]


def test_inference_args_is_the_shipped_file():
    from importlib import resources

    shipped = json.loads(resources.files("aslfs").joinpath("resources/selected_columns_130.json").read_text())
    assert shipped == L.inference_args()


def test_columns_landmarks_roundtrip():
    x = np.random.default_rng(0).normal(size=(7, 390)).astype(np.float32)
    lm = L.to_landmarks(x)
    assert lm.shape == (7, 130, 3)
    assert lm[3, 5, 1] == x[3, 130 + 5]
    assert (L.to_columns(lm) == x).all()
