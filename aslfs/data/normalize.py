"""Global per-sequence normalisation (reference-spec §2.1): the single implementation used by the ``normalize``
stage, the training pipeline and, through ``keras.ops``, the exported TFLite graph.

For each axis separately (x, y, z): mean and population standard deviation over all valid values of the sequence
(every frame, every landmark), then ``(value - mean) / std``; missing values become 0.

The function is written against an array namespace ``xp`` that is either :mod:`numpy` or :mod:`keras.ops`; it uses
only functions both provide with the same meaning (``reshape``, ``transpose``, ``isfinite``, ``where``, ``sum``,
``sqrt``, ``maximum``), so the exported graph computes exactly the stage's math (issue 5 tests the parity).

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
