"""The sequence store: many variable-length sequences as a few memory-mapped ``.npy`` shards plus one index table.

Layout of a store directory::

    index.parquet        one row per sequence: file_id, sequence_id, participant_id, phrase, seq_len,
                         is_supplemental, shard, offset
    shards/<shard>.npy   float32 (N_frames, *frame_shape): the frames of every sequence of one input parquet file,
                         concatenated in file order; sequence i is rows [offset, offset + seq_len)
    meta.json            kind (selected | normalized), frame_shape, dtype, layout version
    report.json          what the stage that wrote the store did (counts, skips)

Why this layout:

- **One shard per input parquet file.** ``select`` handles files independently, so it parallelises over files
  (each worker writes its own shard, no coordination) and a Prefect flow can map over them the same way.
- **Memory map + offsets.** Loading one sequence during training is an O(1) slice of a memory-mapped array: no
  parsing, no decompression, only the pages of that sequence are touched (random access stays fast).
- **No per-sequence files.** The reference writes one ``.npy`` per sequence; for the real corpus that is 120k
  inodes, 120k ``open`` calls per epoch and a slow ``dvc`` hash of the directory. A few hundred shards avoid all three.
- **Plain ``.npy``.** Self-describing (dtype and shape in the header), readable with ``np.load(mmap_mode='r')``,
  never pickled.

The selected store holds (T, 390) frames (``SELECTED_COLUMNS`` order); the normalised store holds (T, 130, 3) so
the training loader uses arrays as they come. Stages build a store in a temporary sibling directory and rename it
into place only when complete (:func:`aslfs.atomic.atomic_dir`): an interrupted stage leaves nothing half-written, and a rerun
replaces the previous store completely.

Shards are written by streaming (:class:`ShardWriter`): the ``.npy`` header is written first with room for the final
shape and rewritten on close, so a shard never has to be held in memory.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.errors import DataError

INDEX_FILE = "index.parquet"
SHARD_DIR = "shards"
META_FILE = "meta.json"
REPORT_FILE = "report.json"
LAYOUT_VERSION = 1
INDEX_COLUMNS = ("file_id", "sequence_id", "participant_id", "phrase", "seq_len", "is_supplemental", "shard", "offset")
_INDEX_DTYPES = {"file_id": "int64", "sequence_id": "int64", "participant_id": "int64", "phrase": "object",
                 "seq_len": "int64", "is_supplemental": "bool", "shard": "object", "offset": "int64"}
_SHARD_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# Placeholder leading dimension for the header written before the final row count is known: as many digits as any
# real count, so the final header has the same padded length (checked on close).
_PLACEHOLDER_ROWS = 10**15


def shard_path(store_dir: str | Path, shard: str) -> Path:
    """``<store>/shards/<shard>.npy``; ``shard`` must be a plain name (no path separators)."""
    if not _SHARD_NAME.match(str(shard)) or str(shard) in (".", ".."):
        raise DataError(f"{store_dir}: invalid shard name {shard!r}")
    return Path(store_dir) / SHARD_DIR / f"{shard}.npy"


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


class ShardWriter:
    """Stream arrays of shape (t, *frame_shape) into one ``.npy`` file, returning each array's row offset.

    Use as a context manager: on success the header is finalised; on an exception the partial file is removed.

    Args:
        path: destination ``.npy`` file (parent folders are created).
        frame_shape: shape of one frame, e.g. ``(390,)`` or ``(130, 3)``.
        dtype: element type (float32).
    """

    def __init__(self, path: str | Path, frame_shape: Sequence[int], dtype=np.float32):
        self.path = Path(path)
        self.frame_shape = tuple(int(d) for d in frame_shape)
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self._fh = None

    def __enter__(self) -> ShardWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb")
        self._header_len = self._fh.write(_npy_header((_PLACEHOLDER_ROWS, *self.frame_shape), self.dtype))
        return self

    def append(self, frames: np.ndarray) -> int:
        """Write ``frames`` (t, *frame_shape); returns the row offset of its first frame."""
        frames = np.ascontiguousarray(frames, dtype=self.dtype)
        if frames.shape[1:] != self.frame_shape:
            raise ValueError(f"{self.path}: frames of shape {frames.shape}, expected (t, {self.frame_shape})")
        offset = self.rows
        self._fh.write(memoryview(frames).cast("B"))
        self.rows += len(frames)
        return offset

    def __exit__(self, exc_type, exc, tb) -> None:
        fh, self._fh = self._fh, None
        try:
            if exc_type is None:
                header = _npy_header((self.rows, *self.frame_shape), self.dtype)
                if len(header) != self._header_len:  # cannot happen below 10**15 rows; never write a broken file
                    raise RuntimeError(f"{self.path}: npy header length changed ({self._header_len} -> {len(header)})")
                fh.seek(0)
                fh.write(header)
        finally:
            fh.close()
            if exc_type is not None:
                self.path.unlink(missing_ok=True)


def write_shard(path: str | Path, arrays: Sequence[np.ndarray], frame_shape: Sequence[int] | None = None) -> list[int]:
    """Write ``arrays`` (each (t, *frame_shape)) as one shard; returns their row offsets."""
    if frame_shape is None:
        if not arrays:
            raise ValueError("write_shard: frame_shape is needed when there are no arrays")
        frame_shape = np.shape(arrays[0])[1:]
    with ShardWriter(path, frame_shape) as w:
        return [w.append(a) for a in arrays]


def read_table(path: str | Path, columns: Sequence[str] | None = None, filters=None) -> pd.DataFrame:
    """A small parquet table (a store's index; ``filters`` as ``pyarrow.parquet.read_table``'s) as a DataFrame, read
    and converted on the calling thread.

    Not ``pd.read_parquet``: that starts arrow's thread pools, and a pool thread still winding down when a short
    command exits aborts the interpreter ("terminate called without an active exception", exit status 134 after the
    work is done; measured: 40 of 1,200 runs of a read-and-exit script, four at once on 2 cores, against 0 of 800
    this way)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=None if columns is None else list(columns), filters=filters,
                          use_threads=False, pre_buffer=False)
    return table.to_pandas(use_threads=False)


def write_index(store_dir: str | Path, index: pd.DataFrame) -> Path:
    """Write ``index.parquet`` with exactly :data:`INDEX_COLUMNS` (checked) and their dtypes."""
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise ValueError(f"index lacks columns {missing}")
    table = index.loc[:, list(INDEX_COLUMNS)].astype(_INDEX_DTYPES).reset_index(drop=True)
    path = Path(store_dir) / INDEX_FILE
    table.to_parquet(path, index=False, engine="pyarrow")
    return path


def write_meta(store_dir: str | Path, kind: str, frame_shape: Sequence[int], **extra) -> None:
    meta = {"layout_version": LAYOUT_VERSION, "kind": kind, "frame_shape": [int(d) for d in frame_shape],
            "dtype": "float32", **extra}
    (Path(store_dir) / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


class SequenceStore:
    """Read access to a store directory.

    ``load(i)`` returns the i-th sequence (index row order) as a fresh float32 array (T, *frame_shape). Shards are
    memory-mapped lazily and cached per process, so a store object can be handed to worker processes (fork or
    pickle): each process opens its own maps on first use.

    Args:
        path: a store directory (``index.parquet``, ``meta.json``, ``shards/``).

    Raises:
        DataError: the directory is not a store, or its index is inconsistent.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / META_FILE
        index_path = self.path / INDEX_FILE
        if not meta_path.is_file() or not index_path.is_file():
            raise DataError(f"{self.path}: not a sequence store (no {META_FILE} / {INDEX_FILE}; run the stage first)")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("layout_version") != LAYOUT_VERSION:
            raise DataError(f"{self.path}: store layout version {self.meta.get('layout_version')}, "
                            f"expected {LAYOUT_VERSION} (rerun the stage)")
        self.frame_shape = tuple(self.meta["frame_shape"])
        self.index = read_table(index_path)
        missing = [c for c in INDEX_COLUMNS if c not in self.index.columns]
        if missing:
            raise DataError(f"{index_path}: missing column(s) {', '.join(missing)}")
        self._shard_names, codes = np.unique(self.index["shard"].astype(str).to_numpy(), return_inverse=True)
        self._codes = codes.astype(np.int64)
        self._offsets = self.index["offset"].to_numpy(np.int64)
        self._lens = self.index["seq_len"].to_numpy(np.int64)
        self._row_of = {int(s): i for i, s in enumerate(self.index["sequence_id"].to_numpy())}
        self._maps: dict[int, np.ndarray] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    def _shard(self, code: int) -> np.ndarray:
        if self._pid != os.getpid():  # forked: never share another process's maps
            self._maps, self._pid = {}, os.getpid()
        mm = self._maps.get(code)
        if mm is None:
            path = shard_path(self.path, self._shard_names[code])
            try:
                mm = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise DataError(f"{path}: cannot open shard ({err})") from None
            if mm.shape[1:] != self.frame_shape:
                raise DataError(f"{path}: frames of shape {mm.shape[1:]}, expected {self.frame_shape}")
            self._maps[code] = mm
        return mm

    def load(self, i: int) -> np.ndarray:
        """Sequence ``i`` (index row ``i``) as float32 (seq_len, *frame_shape), a copy."""
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.path}: sequence position {i} out of range ({len(self)} sequences)")
        mm = self._shard(int(self._codes[i]))
        off, n = int(self._offsets[i]), int(self._lens[i])
        if off + n > len(mm):
            raise DataError(f"{self.path}: sequence {int(self.index.sequence_id.iloc[i])} lies beyond the end of its shard")
        return np.array(mm[off: off + n])

    def position(self, sequence_id: int) -> int:
        """Index row of ``sequence_id``."""
        try:
            return self._row_of[int(sequence_id)]
        except KeyError:
            raise DataError(f"{self.path}: sequence {sequence_id} is not in the store") from None

    def load_id(self, sequence_id: int) -> np.ndarray:
        """The sequence with this ``sequence_id``."""
        return self.load(self.position(sequence_id))

    def shard_names(self) -> list[str]:
        return [str(s) for s in self._shard_names]

    def close(self) -> None:
        """Drop the memory maps (they are reopened on the next load)."""
        self._maps = {}
