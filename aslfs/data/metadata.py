"""The metadata of a competition-format directory (docs/reference.md §1.1, layout in :mod:`aslfs.data.kaggle_format`)
and the policy for unusable sequences.

- :func:`read_metadata` — ``train.csv`` and/or ``supplemental_metadata.csv`` as one table with ``is_supplemental``.
- :func:`resolve_path` — a csv ``path`` inside the directory, or ``None`` when it leaves it.
- :func:`check_rows` — the rows whose phrase and path are usable; the others go to the :class:`Validator`.

File-level problems (a missing csv or data directory, a csv without its columns or with a non-integer id, duplicated
sequence ids) raise :class:`aslfs.errors.DataError` with one line naming the file. Sequence-level problems
(:data:`REASONS`) are reported to a :class:`Validator`: with policy ``error`` the first one raises, with ``skip`` each
is recorded (reason, file, sequence, message) for the stage's report. Nothing is ever dropped silently. The landmark
files themselves are read by :mod:`aslfs.data.reader`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.data.kaggle_format import CSV_COLUMNS, SPLITS, SUPPLEMENTAL_CSV, TRAIN_CSV
from aslfs.errors import DataError
from aslfs.vocab import MAX_PHRASE_LEN, invalid_chars

_INT_CSV_COLUMNS = ("file_id", "sequence_id", "participant_id")

# Why a sequence can be unusable: the keys of the select report's ``skipped`` table.
OOV_PHRASE = "phrase_out_of_vocabulary"  # a character outside the 59 of the vocabulary
LONG_PHRASE = "phrase_too_long"  # more than SelectParams.max_phrase_len characters
EMPTY_PHRASE = "phrase_empty"
BAD_PATH = "path_outside_data_dir"  # the csv path is absolute or climbs out with ``..``
MISSING_FROM_PARQUET = "missing_from_parquet"  # listed in a csv, no rows in its file (absent, or an empty sequence)
NOT_IN_CSV = "not_in_csv"  # rows in a parquet file, listed in no csv
ALL_NAN = "all_nan"  # every value of the 390 selected columns is NaN: nothing to learn from
BAD_FILE = "bad_file"  # its parquet file is missing or unreadable (the file's error is in the report)
REASONS = (OOV_PHRASE, LONG_PHRASE, EMPTY_PHRASE, BAD_PATH, MISSING_FROM_PARQUET, NOT_IN_CSV, ALL_NAN,
           BAD_FILE)


# --------------------------------------------------------------------------------------------------- validation policy

@dataclass(frozen=True)
class Problem:
    """One unusable sequence: why, where, and a one-line message naming file and sequence."""

    reason: str
    file: str
    sequence_id: int | None
    message: str


@dataclass
class Validator:
    """Applies the ``on_invalid`` policy: ``error`` raises the first problem, ``skip`` records every problem."""

    policy: str = "error"
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self):
        if self.policy not in ("error", "skip"):
            raise ValueError(f"on_invalid must be 'error' or 'skip', got {self.policy!r}")

    def __call__(self, reason: str, file: str, sequence_id: int | None, message: str) -> None:
        if self.policy == "error":
            raise DataError(message)
        self.problems.append(Problem(reason, file, None if sequence_id is None else int(sequence_id), message))


# ----------------------------------------------------------------------------------------------------------- metadata

def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"phrase": str, "path": str}, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable csv ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(CSV_COLUMNS)})")
    for col in _INT_CSV_COLUMNS:
        if not pd.api.types.is_integer_dtype(df[col]):
            num = pd.to_numeric(df[col], errors="coerce")
            bad = np.flatnonzero((num.isna() | (num % 1 != 0)).to_numpy())
            line = int(bad[0]) + 2 if len(bad) else 2  # +1 header, +1 one-based
            value = df[col].iloc[line - 2]
            raise DataError(f"{path}: line {line}: column {col} must be an integer, got {value!r}")
        df[col] = df[col].astype(np.int64)
    return df


def read_metadata(data_dir: str | Path) -> pd.DataFrame:
    """Both metadata tables of a competition directory (whichever exist), train rows first.

    Args:
        data_dir: directory holding ``train.csv`` and/or ``supplemental_metadata.csv``.

    Returns:
        DataFrame with the csv columns ``path, file_id, sequence_id, participant_id, phrase`` plus ``is_supplemental``
        (bool), in csv order. ``phrase`` is a string ("" for an empty cell).

    Raises:
        DataError: neither csv exists, a csv lacks a column or has a non-integer id, a sequence id appears twice,
            or one ``file_id`` names two different paths.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data directory not found")
    frames = []
    for name in SPLITS:
        path = data_dir / name
        if path.is_file():
            df = _read_csv(path)
            df = df.loc[:, list(CSV_COLUMNS)].assign(is_supplemental=name == SUPPLEMENTAL_CSV, csv=name)
            frames.append(df)
    if not frames:
        raise DataError(f"{data_dir}: no metadata csv found (expected {' and/or '.join(SPLITS)})")
    meta = pd.concat(frames, ignore_index=True)
    dup = meta[meta.sequence_id.duplicated(keep=False)]
    if len(dup):
        sid = int(dup.sequence_id.iloc[0])
        where = " and ".join(dict.fromkeys(dup[dup.sequence_id == sid].csv))
        raise DataError(f"{data_dir}: sequence {sid} is listed more than once (in {where})")
    paths_per_file = meta.groupby("file_id")["path"].nunique()
    if (paths_per_file > 1).any():
        fid = int(paths_per_file[paths_per_file > 1].index[0])
        paths = sorted(meta.path[meta.file_id == fid].unique())
        raise DataError(f"{data_dir}: file_id {fid} is given two paths ({paths[0]}, {paths[1]})")
    return meta.drop(columns="csv")


def resolve_path(data_dir: str | Path, rel: str) -> Path | None:
    """``data_dir / rel`` if ``rel`` stays inside ``data_dir``, else None.

    The check is on the path as written: an absolute path, or one whose ``..`` components climb above
    ``data_dir``, is refused. Symbolic links inside ``data_dir`` are followed (linking a read-only copy of the
    landmark folders into a working directory is a normal set-up).
    """
    if not isinstance(rel, str) or not rel or os.path.isabs(rel):
        return None
    norm = os.path.normpath(rel)
    if norm == ".." or norm.startswith(".." + os.sep) or norm == ".":
        return None
    return Path(data_dir) / norm


def check_rows(meta: pd.DataFrame, data_dir: str | Path, validate: Validator,
               max_phrase_len: int = MAX_PHRASE_LEN) -> pd.DataFrame:
    """Row-level checks of the metadata: phrase in the vocabulary, not empty, at most ``max_phrase_len``
    characters; ``path`` inside ``data_dir``. Returns the rows that pass (others go to ``validate``)."""
    keep = np.ones(len(meta), bool)
    data_dir = Path(data_dir)
    csvs = {False: data_dir / TRAIN_CSV, True: data_dir / SUPPLEMENTAL_CSV}
    inside = {rel: resolve_path(data_dir, rel) is not None for rel in pd.unique(meta.path)}  # once per file
    for i, row in enumerate(meta.itertuples(index=False)):
        csv = csvs[bool(row.is_supplemental)]
        sid = int(row.sequence_id)
        phrase = row.phrase
        if not inside[row.path]:
            validate(BAD_PATH, str(csv), sid, f"{csv}: sequence {sid}: path {row.path!r} leaves the data directory")
        elif not phrase:
            validate(EMPTY_PHRASE, str(csv), sid, f"{csv}: sequence {sid}: empty phrase")
        elif invalid_chars(phrase):
            bad = "".join(invalid_chars(phrase))
            validate(OOV_PHRASE, str(csv), sid,
                     f"{csv}: sequence {sid}: phrase {phrase!r} has characters outside the vocabulary: {bad!r}")
        elif len(phrase) > max_phrase_len:
            validate(LONG_PHRASE, str(csv), sid,
                     f"{csv}: sequence {sid}: phrase has {len(phrase)} characters (at most {max_phrase_len})")
        else:
            continue
        keep[i] = False
    return meta[keep]


# ------------------------------------------------------------------------------------------------------ parquet files
