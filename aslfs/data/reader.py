"""Reader of the landmark parquet files of a competition-format directory (docs/reference.md §1.1, layout in
:mod:`aslfs.data.kaggle_format`; its csv metadata and the sequence-level validation are :mod:`aslfs.data.metadata`).

Entry points:

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
or sequence): a missing parquet file, unreadable, truncated or corrupt parquet, missing landmark columns (extra
columns are ignored), a column of the wrong type (coordinates must be float32 or float64, ``sequence_id`` an integer;
text is an error), a sequence whose rows are not contiguous.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aslfs.data.metadata import read_metadata, resolve_path
from aslfs.errors import DataError
from aslfs.landmarks import SELECTED_COLUMNS

ID_COLUMN = "sequence_id"
#: Rows per arrow record batch while streaming a file (~25 MB of the 390 selected float32 columns).
BATCH_ROWS = 16_384


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
