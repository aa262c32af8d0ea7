"""Global per-sequence normalisation (docs/reference.md §2.1): the single implementation used by the ``normalize``
stage, the training pipeline and, through ``keras.ops``, the exported TFLite graph.

For each axis separately (x, y, z): mean and population standard deviation over all valid values of the sequence
(every frame, every landmark), then ``(value - mean) / std``; missing values become 0.

The function is written against an array namespace ``xp`` that is either :mod:`numpy` or :mod:`keras.ops`; it uses
only functions both provide with the same meaning (``reshape``, ``transpose``, ``isfinite``, ``where``, ``sum``,
``sqrt``, ``maximum``), so the exported graph computes exactly the stage's math (checked by tests/export/test_normalize_parity.py).

:func:`normalize_store` is the ``normalize`` stage: it applies :func:`normalize_np` to every sequence of a selected
store and writes a store of (T, 130, 3) arrays with the same index.

Deliberate robustness choices (the reference only handles NaN): a non-finite input value (NaN or ±inf) counts as
missing, and an axis with zero spread (σ = 0) maps to 0 instead of ±inf. Neither changes the output for a sequence with
finite, non-constant coordinates, which is every usable real sequence.
"""

from __future__ import annotations

import numpy as np

from aslfs.landmarks import NUM_LANDMARKS


def global_normalize(frames, xp=np):
    """Normalise one sequence.

    Args:
        frames: float32 (T, 390) in ``SELECTED_COLUMNS`` order (x of the 130 landmarks, then y, then z), NaN where
            MediaPipe found nothing.
        xp: ``numpy`` (default) or ``keras.ops``.

    Returns:
        float32 (T, 130, 3), last axis x, y, z; 0 where the input was missing.
    """
    x = xp.transpose(xp.reshape(frames, (-1, 3, NUM_LANDMARKS)), (0, 2, 1))  # (T, 130, 3)
    valid = xp.isfinite(x)
    zero = xp.zeros_like(x)
    x0 = xp.where(valid, x, zero)
    count = xp.sum(xp.where(valid, xp.ones_like(x), zero), axis=(0, 1))  # (3,)
    denom = xp.maximum(count, 1.0)
    mean = xp.sum(x0, axis=(0, 1)) / denom
    centred = xp.where(valid, x0 - mean, zero)
    std = xp.sqrt(xp.sum(centred * centred, axis=(0, 1)) / denom)
    safe_std = xp.where(std > 0, std, xp.ones_like(std))
    return xp.where(valid & (std > 0), centred / safe_std, zero)


def normalize_np(frames: np.ndarray) -> np.ndarray:
    """NumPy convenience wrapper: float32 in, float32 (T, 130, 3) out."""
    return global_normalize(np.asarray(frames, dtype=np.float32)).astype(np.float32, copy=False)


def normalize_store(src_dir, dst_dir) -> dict:
    """The ``normalize`` stage: selected store (T, 390) → normalised store (T, 130, 3) with the same index.

    Every sequence goes through :func:`global_normalize` (NumPy), shard by shard in offset order, streamed to disk
    (memory: one sequence); the output directory is replaced atomically (see :mod:`aslfs.data.store`). The index is
    the selected one (offsets recomputed for the new shards, identical when the source shards have no gaps).

    Args:
        src_dir: a selected store (``aslfs select``).
        dst_dir: the normalised store to (re)write.

    Returns:
        Report (also written to ``<dst_dir>/report.json``): sequences, frames, shards, and ``all_zero`` — the ids
        of sequences that normalise to all zeros (no valid coordinate, or constant on every axis).
    """
    from aslfs.atomic import atomic_dir, write_json
    from aslfs.data.store import REPORT_FILE, SequenceStore, ShardWriter, shard_path, write_index, write_meta
    from aslfs.errors import DataError

    src = SequenceStore(src_dir)
    if src.frame_shape != (3 * NUM_LANDMARKS,):
        raise DataError(f"{src_dir}: expected a selected store of (T, {3 * NUM_LANDMARKS}) frames, "
                        f"found frames of shape {src.frame_shape}")
    index = src.index.copy()
    offsets = index["offset"].to_numpy(np.int64).copy()
    all_zero: list[int] = []
    with atomic_dir(dst_dir) as tmp:
        for shard in src.shard_names():
            rows = np.flatnonzero(index["shard"].astype(str).to_numpy() == shard)
            rows = rows[np.argsort(index["offset"].to_numpy()[rows], kind="stable")]
            with ShardWriter(shard_path(tmp, shard), (NUM_LANDMARKS, 3)) as writer:
                for i in rows:
                    out = normalize_np(src.load(i))
                    offsets[i] = writer.append(out)
                    if not out.any():
                        all_zero.append(int(index["sequence_id"].iat[i]))
        index["offset"] = offsets
        write_index(tmp, index)
        write_meta(tmp, "normalized", (NUM_LANDMARKS, 3), normalization="global per-sequence (docs/reference.md §2.1)")
        report = {"sequences": len(index), "frames": int(index["seq_len"].sum()), "shards": len(src.shard_names()),
                  "all_zero_count": len(all_zero), "all_zero": sorted(all_zero)}
        write_json(tmp / REPORT_FILE, report, sort_keys=False)
    src.close()
    return report
