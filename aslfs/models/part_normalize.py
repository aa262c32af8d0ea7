"""Per-part normalisation inside the round-2 model (docs/reference.md §2.3), in ``keras.ops``.

Used by the encoder for training and inference alike (and therefore by the exported TFLite graph).
"""

from __future__ import annotations

import numpy as np
from keras import ops

from aslfs.landmarks import PARTS

#: The part order of the round-2 part extractors (their outputs are concatenated in this order).
PART_ORDER: tuple[str, ...] = ("left_hand", "right_hand", "face", "pose")


def part_normalize(x, indices):
    """Standardise one part of a globally normalised batch, per frame and per axis.

    1. Take the part's landmarks; per (b, t, axis), subtract their mean and divide by their population std.
    2. A zero std (constant part, e.g. a missing hand, or a pad frame) gives 0, as the reference's NaN/inf → 0;
       any other non-finite result is set to 0 as well.
    3. Dropped-landmark rule: a landmark whose x + y in the *globally normalised* input is exactly 0 (missing,
       zero-filled by augmentation, or padding) gets 0 in all of x, y, z. Such landmarks still count in the
       part's mean and std.

    Args:
        x: float (B, T, 130, 3), globally normalised (§2.1), zero at pads.
        indices: int sequence/array of the part's landmark indices into the 130 (e.g. ``PARTS["face"]``).

    Returns:
        float (B, T, n, 3), n = len(indices), in ``x``'s dtype.
    """
    indices = np.asarray(indices, dtype=np.int32)
    if indices.size and np.array_equal(indices, np.arange(indices[0], indices[0] + indices.size)):
        part = x[:, :, int(indices[0]): int(indices[0]) + indices.size]
    else:
        part = ops.take(x, indices, axis=2)
    dtype = part.dtype
    part32 = ops.cast(part, "float32")
    mean = ops.mean(part32, axis=2, keepdims=True)
    centred = part32 - mean
    std = ops.sqrt(ops.mean(ops.square(centred), axis=2, keepdims=True))
    normalized = ops.where(std > 0, centred / ops.where(std > 0, std, ops.ones_like(std)), ops.zeros_like(std))
    dropped = ops.equal(part32[..., 0:1] + part32[..., 1:2], 0.0)  # (B, T, n, 1)
    normalized = ops.where(dropped | ~ops.isfinite(normalized), ops.zeros_like(normalized), normalized)
    return ops.cast(normalized, dtype)


def split_parts(x):
    """All four parts of ``x`` (B, T, 130, 3), normalised, in :data:`PART_ORDER`."""
    return [part_normalize(x, PARTS[name]) for name in PART_ORDER]
