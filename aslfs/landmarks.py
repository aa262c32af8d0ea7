"""The landmarks: MediaPipe Holistic column layout, the 130 landmarks the model reads, their parts and mirror map.

This is the single place that knows landmark names and orders (docs/reference.md §1.2, §2.3, §3.1). Everything else
(the reader, the generator, the model's part split, the flip augmentation, the exported ``inference_args.json``)
imports from here.

Conventions:
- A *landmark name* is ``"<part>_<i>"`` with part in ``face`` (0-467), ``left_hand`` (0-20), ``pose`` (0-32),
  ``right_hand`` (0-20): the 543 landmarks of MediaPipe Holistic in the competition's order.
- A *column* is ``"<axis>_<name>"``; competition files hold all x columns, then all y, then all z.
- The model's 130 landmarks (``LANDMARKS``) are ordered as the 1st-place solution: lips 40, left hand 21,
  right hand 21, nose 4, right eye 16, left eye 16, pose 6 + 6. ``SELECTED_COLUMNS`` is x of those 130, then y, then z.
"""

from __future__ import annotations

import csv
import json
from importlib import resources

import numpy as np

AXES = ("x", "y", "z")
PARTS_543 = (("face", 468), ("left_hand", 21), ("pose", 33), ("right_hand", 21))

#: The 543 Holistic landmark names in competition order.
ALL_LANDMARKS: tuple[str, ...] = tuple(f"{part}_{i}" for part, n in PARTS_543 for i in range(n))
#: The 1,629 coordinate columns of a competition parquet file, in file order (x..., y..., z...).
ALL_COLUMNS: tuple[str, ...] = tuple(f"{a}_{name}" for a in AXES for name in ALL_LANDMARKS)

_LIP = (0, 61, 185, 40, 39, 37, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375,
        78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
_NOSE = (1, 2, 98, 327)
_REYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
_LEYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
_LARMS = (12, 14, 16, 18, 20, 22)  # pose landmarks the reference calls "LARMS" (the person's right arm)
_RARMS = (11, 13, 15, 17, 19, 21)

#: Groups of the 130-landmark list, in model order: (group, names).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lips", tuple(f"face_{i}" for i in _LIP)),
    ("left_hand", tuple(f"left_hand_{i}" for i in range(21))),
    ("right_hand", tuple(f"right_hand_{i}" for i in range(21))),
    ("nose", tuple(f"face_{i}" for i in _NOSE)),
    ("right_eye", tuple(f"face_{i}" for i in _REYE)),
    ("left_eye", tuple(f"face_{i}" for i in _LEYE)),
    ("pose_12_22", tuple(f"pose_{i}" for i in _LARMS)),
    ("pose_11_21", tuple(f"pose_{i}" for i in _RARMS)),
)
#: The 130 landmarks the model reads, in model order.
LANDMARKS: tuple[str, ...] = tuple(n for _, group in GROUPS for n in group)
NUM_LANDMARKS = len(LANDMARKS)  # 130
#: The 390 columns of ``inference_args.json``: x of the 130 landmarks, then y, then z.
SELECTED_COLUMNS: tuple[str, ...] = tuple(f"{a}_{n}" for a in AXES for n in LANDMARKS)

_GROUP_SLICES = {}
_start = 0
for _name, _group in GROUPS:
    _GROUP_SLICES[_name] = np.arange(_start, _start + len(_group))
    _start += len(_group)

LIPS = _GROUP_SLICES["lips"]
LEFT_HAND = _GROUP_SLICES["left_hand"]  # model indices 40-60
RIGHT_HAND = _GROUP_SLICES["right_hand"]  # model indices 61-81
NOSE = _GROUP_SLICES["nose"]
RIGHT_EYE = _GROUP_SLICES["right_eye"]
LEFT_EYE = _GROUP_SLICES["left_eye"]
#: Per-part index arrays into the 130 landmarks, the round-2 model's part split (docs/reference.md §2.3).
FACE = np.concatenate([LIPS, NOSE, RIGHT_EYE, LEFT_EYE])  # 76, lips first, then nose, right eye, left eye
POSE = np.concatenate([_GROUP_SLICES["pose_12_22"], _GROUP_SLICES["pose_11_21"]])  # 12, model indices 118-129
HANDS = np.concatenate([LEFT_HAND, RIGHT_HAND])
PARTS: dict[str, np.ndarray] = {"left_hand": LEFT_HAND, "right_hand": RIGHT_HAND, "face": FACE, "pose": POSE}

#: Part type per model landmark as the reference encodes it: 1 left hand, 2 right hand, 3 face, 4 pose.
PART_TYPE = np.zeros(NUM_LANDMARKS, dtype=np.int32)
PART_TYPE[LEFT_HAND], PART_TYPE[RIGHT_HAND], PART_TYPE[FACE], PART_TYPE[POSE] = 1, 2, 3, 4

#: Points of one MediaPipe hand (indices 0-20 within ``<side>_hand_<i>``): the wrist, the middle finger's MCP (the
#: wrist -> middle-MCP distance is the usual hand size) and the five fingertips, thumb to pinky.
HAND_WRIST, HAND_MIDDLE_MCP = 0, 9
HAND_FINGERTIPS = (4, 8, 12, 16, 20)

#: Fingers of each hand as model indices (wrist excluded): thumb, index, middle, ring, pinky (docs/reference.md §3.7).
FINGERS = np.array([hand[1 + 4 * f: 5 + 4 * f] for hand in (LEFT_HAND, RIGHT_HAND) for f in range(5)])


def _load_mirror_543() -> dict[str, str]:
    text = resources.files("aslfs").joinpath("resources/landmark_mirror.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    mirror = {r["id"]: r["corresponding_id"] for r in rows}
    if set(mirror) != set(ALL_LANDMARKS):
        raise ValueError("landmark_mirror.csv does not list the 543 holistic landmarks")
    return mirror


#: Mirror partner of every Holistic landmark name.
MIRROR_543: dict[str, str] = _load_mirror_543()


def _flip_index() -> np.ndarray:
    pos = {n: i for i, n in enumerate(LANDMARKS)}
    return np.array([pos[MIRROR_543[n]] for n in LANDMARKS], dtype=np.int64)


#: Mirror permutation of the 130: after a flip, landmark i takes the data of landmark ``FLIP_INDEX[i]``.
FLIP_INDEX: np.ndarray = _flip_index()


def _check_against_shipped_columns() -> None:
    text = resources.files("aslfs").joinpath("resources/selected_columns_130.json").read_text()
    shipped = tuple(json.loads(text)["selected_columns"])
    if shipped != SELECTED_COLUMNS:
        raise ValueError("aslfs.landmarks: the 130-landmark list differs from resources/selected_columns_130.json")


_check_against_shipped_columns()

#: Column index of each selected column inside ``ALL_COLUMNS`` (for readers of full 1,629-column frames).
SELECTED_IN_ALL = np.array([ALL_COLUMNS.index(c) for c in SELECTED_COLUMNS], dtype=np.int64)


def inference_args() -> dict[str, list[str]]:
    """The content of a submission's ``inference_args.json``."""
    return {"selected_columns": list(SELECTED_COLUMNS)}


def to_landmarks(frames: np.ndarray) -> np.ndarray:
    """(T, 390) columns in ``SELECTED_COLUMNS`` order → (T, 130, 3) with the last axis x, y, z."""
    frames = np.asarray(frames)
    return frames.reshape(frames.shape[0], 3, NUM_LANDMARKS).transpose(0, 2, 1)


def to_columns(landmarks: np.ndarray) -> np.ndarray:
    """(T, 130, 3) → (T, 390) in ``SELECTED_COLUMNS`` order (inverse of :func:`to_landmarks`)."""
    landmarks = np.asarray(landmarks)
    return landmarks.transpose(0, 2, 1).reshape(landmarks.shape[0], 3 * NUM_LANDMARKS)
