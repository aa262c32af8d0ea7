"""Reader of a competition-format directory (docs/reference.md §1.1, layout in :mod:`aslfs.data.kaggle_format`).

Entry points:

- :func:`read_metadata` — ``train.csv`` and/or ``supplemental_metadata.csv`` as one table with ``is_supplemental``.
- :func:`iter_file_sequences` — streams one landmark parquet file, record batch by record batch, yielding each
  sequence as a float32 (T, n_columns) array. Only ``sequence_id`` and the requested columns are read (391 of 1,631
  for the model's 390), so memory is bounded by three batches (one decoding ahead in a background thread, one
  queued, one being sliced; 25 MB each) plus arrow's per-column read buffers, never by the file count or the
  corpus. Rows keep file order (docs/reference.md §1.3: not re-sorted by ``frame``); a sequence may span batches and
  row groups. Where ``select``'s time goes (5,000 generated sequences: 1.1 GB of parquet, 1.3 GB of frames, about
  2.8 CPU s in all): decoding the 391 zstd columns about 1.5 CPU s (zstd itself 0.9), converting batches to
  row-major 0.6, writing the shards 0.3-1.2 (kernel time, page cache), reading the 20 footers of 1,631 columns
  0.15; the read-ahead thread overlaps decoding with the rest when a second core is free.
- :func:`read_file_sequence` / :func:`load_sequence` — one sequence of a parquet file / of a competition directory
  (for ``aslfs render`` and ``aslfs predict``), skipping row groups whose ``sequence_id`` statistics exclude it.

Validation. File-level problems raise :class:`aslfs.errors.DataError` with one line naming the file (and the column
or sequence): missing csv / data directory / parquet file, unreadable, truncated or corrupt parquet, missing
landmark columns (extra columns are ignored), a column of the wrong type (coordinates must be float32 or float64,
``sequence_id`` an integer; text is an error), a csv without its columns or with a non-integer id, duplicated
sequence ids, a sequence whose rows are not contiguous. Sequence-level problems (:data:`REASONS`) are reported to a
:class:`Validator`: with policy ``error`` the first one raises, with ``skip`` each is recorded (reason, file,
sequence, message) for the stage's report. Nothing is ever dropped silently.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aslfs.data.kaggle_format import CSV_COLUMNS, SPLITS, SUPPLEMENTAL_CSV, TRAIN_CSV
from aslfs.errors import DataError
from aslfs.landmarks import SELECTED_COLUMNS
from aslfs.vocab import MAX_PHRASE_LEN, invalid_chars

ID_COLUMN = "sequence_id"
#: Rows per arrow record batch while streaming a file (~25 MB of the 390 selected float32 columns).
BATCH_ROWS = 16_384
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

def _is_coordinate_type(t: pa.DataType) -> bool:
    return pa.types.is_float32(t) or pa.types.is_float64(t)


def open_parquet(path: str | Path, columns: Sequence[str] = SELECTED_COLUMNS) -> pq.ParquetFile:
    """Open a landmark file and check its schema: ``sequence_id`` an integer column, every requested column present
    and float32/float64. Extra columns are allowed (and never read).

    Raises:
        DataError: file missing, not a readable parquet file, a column missing or of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: parquet file not found")
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable parquet file ({_one_line(err)})") from None
    names = set(schema.names)
    if ID_COLUMN not in names:
        raise DataError(f"{path}: no {ID_COLUMN} column (as index or column)")
    if not pa.types.is_integer(schema.field(ID_COLUMN).type):
        raise DataError(f"{path}: column {ID_COLUMN} has type {schema.field(ID_COLUMN).type}, expected an integer")
    missing = [c for c in columns if c not in names]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DataError(f"{path}: missing {len(missing)} landmark column(s): {', '.join(missing[:3])}{more}")
    for c in columns:
        t = schema.field(c).type
        if not _is_coordinate_type(t):
            raise DataError(f"{path}: column {c} has type {t}, expected float32 or float64")
    return pf


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _batch_to_array(batch: pa.RecordBatch, n_cols: int) -> np.ndarray:
    """Columns 1..n_cols of a record batch as a C-contiguous float32 (rows, n_cols) array, nulls → NaN.

    All-float32 batches (the competition files) go through arrow's ``RecordBatch.to_tensor``: one C++ pass that
    writes the row-major result directly and releases the GIL (so it overlaps with the caller's work when reading
    ahead). Otherwise each column is written into its strided place of the row-major result. Both were measured
    faster than filling a column-major array and transposing it (two memory passes instead of one).
    """
    coords = batch.select(range(1, n_cols + 1))
    if all(pa.types.is_float32(t) for t in coords.schema.types):
        return np.asarray(coords.to_tensor(row_major=True, null_to_nan=True))
    out = np.empty((batch.num_rows, n_cols), np.float32)
    for j in range(n_cols):
        out[:, j] = coords.column(j).to_numpy(zero_copy_only=False)  # nulls become NaN; float64 cast on assignment
    return out


def _decoded_blocks(pf: pq.ParquetFile, path: Path, columns: Sequence[str],
                    batch_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(sequence ids (rows,), frames (rows, n_cols) float32) per record batch, in file order."""
    batches = pf.iter_batches(batch_size=batch_rows, columns=[ID_COLUMN, *columns], use_threads=True)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError) as err:
            raise DataError(f"{path}: cannot decode the parquet data ({_one_line(err)})") from None
        if batch.num_rows == 0:
            continue
        ids_col = batch.column(0)
        if ids_col.null_count:
            raise DataError(f"{path}: {ID_COLUMN} has {ids_col.null_count} null value(s)")
        yield ids_col.to_numpy().astype(np.int64, copy=False), _batch_to_array(batch, len(columns))


_END = object()


def _read_ahead(items: Iterator, depth: int = 1) -> Iterator:
    """Iterate ``items`` in a background thread that stays up to ``depth`` items ahead of the caller.

    Used to decode the next record batch while the caller slices and writes the current one: arrow's decoding and
    numpy's copies release the GIL, so the two overlap on two cores. Exceptions reach the caller in order, after
    the items produced before them; closing this iterator (or abandoning it) stops and joins the thread. Memory:
    at most ``depth + 2`` items exist at once (one being produced, ``depth`` queued, one with the caller).
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as err:  # noqa: BLE001  handed over to the caller, re-raised there
            put((None, err))
            return
        put((_END, None))

    thread = threading.Thread(target=produce, name="aslfs-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, err = q.get()
            if err is not None:
                raise err
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def iter_file_sequences(parquet_path: str | Path, columns: Sequence[str] = SELECTED_COLUMNS,
                        batch_rows: int = BATCH_ROWS, read_ahead: bool = True) -> Iterator[tuple[int, np.ndarray]]:
    """Stream the sequences of one landmark file, in file order.

    Args:
        parquet_path: a competition landmark file.
        columns: coordinate columns to return, in this order (default: the model's 390).
        batch_rows: rows per record batch read at a time.
        read_ahead: decode the next record batch in a background thread while the caller handles the current
            sequences (same output; at most three batches in memory instead of one).

    Yields:
        ``(sequence_id, frames)`` with frames a C-contiguous float32 (T, len(columns)) array (a view into its
        batch's array when the sequence lies within one batch), rows in file order (not sorted by frame), NaN where
        the file holds NaN or null.

    Raises:
        DataError: see :func:`open_parquet`; also a null ``sequence_id``, a sequence whose rows are not contiguous,
            or a file that fails to decode part-way (truncated or corrupt pages).
    """
    path = Path(parquet_path)
    pf = open_parquet(path, columns)
    current: int | None = None
    pieces: list[np.ndarray] = []
    seen: set[int] = set()
    blocks = _decoded_blocks(pf, path, columns, batch_rows)
    for ids, block in (_read_ahead(blocks) if read_ahead else blocks):
        starts = np.concatenate([[0], np.flatnonzero(ids[1:] != ids[:-1]) + 1])
        ends = np.append(starts[1:], len(ids))
        for a, b in zip(starts.tolist(), ends.tolist()):
            sid = int(ids[a])
            if sid != current:
                if current is not None:
                    yield current, pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
                if sid in seen:
                    raise DataError(f"{path}: sequence {sid}: rows are not contiguous in the file")
                seen.add(sid)
                current, pieces = sid, []
            pieces.append(block[a:b])
    if current is not None:
        yield current, pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _row_groups_for(pf: pq.ParquetFile, sequence_id: int) -> list[int]:
    """Row groups whose ``sequence_id`` min/max statistics may contain ``sequence_id`` (all when unknown)."""
    md = pf.metadata
    leaves = md.schema.names
    col = leaves.index(ID_COLUMN) if ID_COLUMN in leaves else None
    groups = []
    for g in range(md.num_row_groups):
        stats = md.row_group(g).column(col).statistics if col is not None else None
        if stats is None or not stats.has_min_max or stats.min <= sequence_id <= stats.max:
            groups.append(g)
    return groups


def read_file_sequence(parquet_path: str | Path, sequence_id: int,
                       columns: Sequence[str] = SELECTED_COLUMNS) -> np.ndarray:
    """The frames of one sequence of one landmark file (float32 (T, len(columns)), file order).

    Raises:
        DataError: as :func:`open_parquet`, or the sequence has no rows in the file.
    """
    path = Path(parquet_path)
    pf = open_parquet(path, columns)
    parts = []
    try:
        for g in _row_groups_for(pf, int(sequence_id)):
            table = pf.read_row_group(g, columns=[ID_COLUMN, *columns])
            ids = table.column(0).to_numpy()
            rows = np.flatnonzero(ids == sequence_id)
            if len(rows):
                sub = table.take(pa.array(rows))
                for batch in sub.to_batches():
                    parts.append(_batch_to_array(batch, len(columns)))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot decode the parquet data ({_one_line(err)})") from None
    if not parts:
        raise DataError(f"{path}: sequence {sequence_id} has no rows in the file")
    return np.concatenate(parts)


def load_sequence(data_dir: str | Path, sequence_id: int,
                  columns: Sequence[str] = SELECTED_COLUMNS) -> tuple[dict, np.ndarray]:
    """One sequence of a competition directory: its metadata row and its frames.

    Args:
        data_dir: competition-format directory.
        sequence_id: a ``sequence_id`` listed in one of its csv files.
        columns: coordinate columns to return (default: the model's 390).

    Returns:
        ``(meta, frames)``: meta is the csv row as a dict (``path, file_id, sequence_id, participant_id, phrase,
        is_supplemental``); frames float32 (T, len(columns)) in file order.

    Raises:
        DataError: the id is not in the metadata, its path leaves the directory, or its parquet file is missing,
            unreadable or has no rows for it.
    """
    data_dir = Path(data_dir)
    meta = read_metadata(data_dir)
    row = meta[meta.sequence_id == int(sequence_id)]
    if row.empty:
        raise DataError(f"{data_dir}: sequence {sequence_id} is in no metadata csv")
    info = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[0].to_dict().items()}
    path = resolve_path(data_dir, info["path"])
    if path is None:
        raise DataError(f"{data_dir}: sequence {sequence_id}: path {info['path']!r} leaves the data directory")
    return info, read_file_sequence(path, int(sequence_id), columns)
