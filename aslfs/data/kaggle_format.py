"""The competition's on-disk format, in one place: file layout, csv columns, parquet schema, and a writer.

Layout of a competition-format directory::

    train.csv                     path,file_id,sequence_id,participant_id,phrase
    supplemental_metadata.csv     same columns
    train_landmarks/<file_id>.parquet
    supplemental_landmarks/<file_id>.parquet

A landmark parquet file has the pandas index ``sequence_id`` (int64), a ``frame`` column (int16) and the 1,629 float32
columns of :data:`aslfs.landmarks.ALL_COLUMNS` in that order; one row per frame, many sequences per file, NaN where
MediaPipe found nothing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aslfs.landmarks import ALL_COLUMNS

CSV_COLUMNS = ("path", "file_id", "sequence_id", "participant_id", "phrase")
TRAIN_CSV = "train.csv"
SUPPLEMENTAL_CSV = "supplemental_metadata.csv"
TRAIN_DIR = "train_landmarks"
SUPPLEMENTAL_DIR = "supplemental_landmarks"
#: csv name -> landmark folder
SPLITS = {TRAIN_CSV: TRAIN_DIR, SUPPLEMENTAL_CSV: SUPPLEMENTAL_DIR}


@lru_cache(maxsize=1)
def landmark_schema() -> pa.Schema:
    """The arrow schema of a competition landmark file, pandas metadata included (index = ``sequence_id``)."""
    empty = pd.DataFrame({"sequence_id": pd.Series([], dtype="int64"), "frame": pd.Series([], dtype="int16")})
    empty = empty.join(pd.DataFrame(np.zeros((0, len(ALL_COLUMNS)), np.float32), columns=list(ALL_COLUMNS)))
    return pa.Schema.from_pandas(empty.set_index("sequence_id"), preserve_index=True)


def write_landmark_file(
    path: str | Path,
    sequences: list[tuple[int, np.ndarray]],
    row_group_frames: int = 20_000,
    compression: str = "snappy",
    byte_stream_split: bool = False,
) -> None:
    """Write one landmark parquet file.

    Args:
        path: destination ``.parquet`` file (parent folders are created).
        sequences: ``(sequence_id, frames)`` pairs; ``frames`` is float32 (T, 1629) in ``ALL_COLUMNS`` order.
            Frame numbers are written as 0..T-1.
        row_group_frames: rows per parquet row group (readers stream one row group at a time).
        compression: parquet codec (``snappy``, ``zstd``, ...).
        byte_stream_split: store the coordinate columns with the BYTE_STREAM_SPLIT encoding and no dictionary
            (much smaller with ``zstd`` when the values are rounded, as the synthetic generator does; any parquet
            reader decodes it).
    """
    schema = landmark_schema()
    seq_ids = np.concatenate([np.full(len(f), sid, np.int64) for sid, f in sequences]) if sequences else np.zeros(0, np.int64)
    frame_no = np.concatenate([np.arange(len(f), dtype=np.int16) for _, f in sequences]) if sequences else np.zeros(0, np.int16)
    values = (np.concatenate([np.asarray(f, np.float32) for _, f in sequences]) if sequences
              else np.zeros((0, len(ALL_COLUMNS)), np.float32))
    if values.shape[1] != len(ALL_COLUMNS):
        raise ValueError(f"{path}: frames have {values.shape[1]} columns, expected {len(ALL_COLUMNS)}")
    arrays = {"frame": pa.array(frame_no, pa.int16())}
    for j, name in enumerate(ALL_COLUMNS):
        arrays[name] = pa.array(values[:, j], pa.float32(), from_pandas=True)
    arrays["sequence_id"] = pa.array(seq_ids, pa.int64())
    table = pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding = {}
    if byte_stream_split:
        encoding = {"use_dictionary": ["sequence_id", "frame"], "use_byte_stream_split": list(ALL_COLUMNS)}
    pq.write_table(table, path, row_group_size=row_group_frames, compression=compression, **encoding)


def write_metadata_csv(path: str | Path, rows: pd.DataFrame) -> None:
    """Write ``train.csv`` / ``supplemental_metadata.csv`` with exactly the competition's columns, in order."""
    missing = [c for c in CSV_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"{path}: metadata rows lack columns {missing}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    rows.loc[:, list(CSV_COLUMNS)].to_csv(path, index=False)
