"""A tiny competition-format fixture writer for tests (and quick benchmark corpora).

It writes exactly the layout of :mod:`aslfs.data.kaggle_format` (``train.csv``, ``supplemental_metadata.csv``,
``train_landmarks/<file_id>.parquet``, ``supplemental_landmarks/<file_id>.parquet``) through
:func:`aslfs.data.kaggle_format.write_landmark_file`, so every reader test exercises the real on-disk format.

Typical use::

    seqs = [Seq(101, participant_id=1, phrase="3 main st", frames=make_frames(rng, 12)), ...]
    meta = write_dataset(tmp_path, seqs)          # returns the metadata rows as written (is_supplemental added)

or ``random_dataset(tmp_path, n_sequences=40, sequences_per_file=10)`` for a corpus of random valid sequences.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.data.kaggle_format import (
    SUPPLEMENTAL_CSV,
    SUPPLEMENTAL_DIR,
    TRAIN_CSV,
    TRAIN_DIR,
    write_landmark_file,
    write_metadata_csv,
)
from aslfs.landmarks import ALL_COLUMNS, SELECTED_IN_ALL

N_ALL = len(ALL_COLUMNS)  # 1629
_HAND_COLS = np.array([j for j, c in enumerate(ALL_COLUMNS) if "_hand_" in c])
_LEFT_COLS = np.array([j for j, c in enumerate(ALL_COLUMNS) if "_left_hand_" in c])
_RIGHT_COLS = np.array([j for j, c in enumerate(ALL_COLUMNS) if "_right_hand_" in c])

PHRASES = ("3 creekhouse", "scales/kuhaylah", "1383 william lanier", "988 franklin lane", "6920 northeast 661st road",
           "www.freem.ne.jp", "https://jsi.is/hukuoka", "+1-983-523-6264", "all that glitters is not gold",
           "the quick brown fox", "coffee is hot", "a~b@c.org")


def make_frames(rng: np.random.Generator, n_frames: int, hand_missing: float = 0.3) -> np.ndarray:
    """Random (T, 1629) float32 frames in [0, 1): each hand missing (NaN) in about ``hand_missing`` of the frames."""
    frames = rng.random((n_frames, N_ALL), dtype=np.float32)
    for cols in (_LEFT_COLS, _RIGHT_COLS):
        missing = rng.random(n_frames) < hand_missing
        frames[np.ix_(missing, cols)] = np.nan
    return frames


def selected(frames: np.ndarray) -> np.ndarray:
    """The (T, 390) selection of (T, 1629) frames, in ``SELECTED_COLUMNS`` order: what the reader must return."""
    return np.ascontiguousarray(frames[:, SELECTED_IN_ALL])


@dataclass
class Seq:
    """One sequence of a fixture dataset."""

    sequence_id: int
    participant_id: int
    phrase: str
    frames: np.ndarray  # (T, 1629) float32
    file_id: int = 1
    supplemental: bool = False
    extra: dict = field(default_factory=dict)


def write_dataset(root: str | Path, seqs: list[Seq], row_group_frames: int = 20_000,
                  write_csv: bool = True) -> pd.DataFrame:
    """Write ``seqs`` in competition format under ``root`` (files grouped by ``file_id``, sequences in list order).

    Returns the metadata rows (csv columns + ``is_supplemental``) in the order written: train rows, then supplemental.
    """
    root = Path(root)
    rows = []
    files: dict[tuple[bool, int], list[tuple[int, np.ndarray]]] = {}
    for s in seqs:
        folder = SUPPLEMENTAL_DIR if s.supplemental else TRAIN_DIR
        rows.append({"path": f"{folder}/{s.file_id}.parquet", "file_id": s.file_id, "sequence_id": s.sequence_id,
                     "participant_id": s.participant_id, "phrase": s.phrase, "is_supplemental": s.supplemental})
        files.setdefault((s.supplemental, s.file_id), []).append((s.sequence_id, s.frames))
    for (supp, file_id), items in files.items():
        folder = SUPPLEMENTAL_DIR if supp else TRAIN_DIR
        write_landmark_file(root / folder / f"{file_id}.parquet", items, row_group_frames=row_group_frames)
    meta = pd.DataFrame(rows, columns=["path", "file_id", "sequence_id", "participant_id", "phrase", "is_supplemental"])
    meta = pd.concat([meta[~meta.is_supplemental], meta[meta.is_supplemental]], ignore_index=True)
    if write_csv:
        for supp, name in ((False, TRAIN_CSV), (True, SUPPLEMENTAL_CSV)):
            part = meta[meta.is_supplemental == supp]
            if len(part):
                write_metadata_csv(root / name, part)
    return meta


def random_dataset(root: str | Path, n_sequences: int = 40, sequences_per_file: int = 10, participants: int = 8,
                   frames: tuple[int, int] = (8, 30), supplemental_fraction: float = 0.25, seed: int = 0,
                   row_group_frames: int = 20_000) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """A random valid corpus; returns (metadata rows, {sequence_id: (T, 1629) frames})."""
    rng = np.random.default_rng(seed)
    n_supp = int(round(n_sequences * supplemental_fraction))
    seqs, arrays = [], {}
    for i in range(n_sequences):
        supp = i >= n_sequences - n_supp
        k = i - (n_sequences - n_supp) if supp else i
        file_id = (2000 if supp else 1000) + k // sequences_per_file
        sid = 10_000 + i
        arr = make_frames(rng, int(rng.integers(frames[0], frames[1] + 1)))
        arrays[sid] = arr
        seqs.append(Seq(sid, int(rng.integers(participants)), PHRASES[int(rng.integers(len(PHRASES)))], arr,
                        file_id=file_id, supplemental=supp))
    return write_dataset(root, seqs, row_group_frames=row_group_frames), arrays


@functools.cache
def demo_params_file() -> Path:
    """A ``params.yaml`` holding the demo profile, outside the checkout: tests never read the checkout's own
    ``params.yaml``, which ``aslfs profile`` or ``dvc exp run -S`` may have rewritten."""
    from aslfs.profiles import params_yaml

    folder = Path(tempfile.mkdtemp(prefix="aslfs-test-params-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "params.yaml"
    path.write_text(params_yaml("demo"))
    return path
