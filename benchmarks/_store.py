"""A throw-away normalised sequence store with a realistic length distribution, shared by the training benchmarks.

Lengths are gamma-distributed (shape 3, mean ``mean_frames`` ≈ 160, clipped to [8, 1000]) as in the competition data;
coordinates are standard normal with the right hand missing (zero) in every other frame; phrases and participants
are drawn from small pools; ``supplemental_fraction`` of the rows are supplemental.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.data.store import write_index, write_meta, write_shard
from aslfs.landmarks import RIGHT_HAND

PHRASES = ["3 creekhouse", "scales/kuhaylah", "1383 william lanier", "988 franklin lane", "6920 northeast 661st road",
           "www.freem.ne.jp", "https://jsi.is/hukuoka", "239613 stolze", "871 township road 3", "+44-87-86-97"]


def lengths(n: int, mean_frames: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rng.gamma(3.0, mean_frames / 3.0, size=n), 8, 1000).astype(np.int64)


def write_store(root: str | Path, n: int = 512, mean_frames: float = 160.0, participants: int = 16,
                supplemental_fraction: float = 0.3, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """Write ``<root>/store``; returns its path and the loader table (store_pos, ..., is_sup, score, fold)."""
    rng = np.random.default_rng(seed)
    store = Path(root) / "store"
    lens = lengths(n, mean_frames, rng)
    arrays = []
    for t in lens:
        x = rng.standard_normal((int(t), 130, 3)).astype(np.float32)
        x[::2, RIGHT_HAND] = 0.0
        arrays.append(x)
    offsets = write_shard(store / "shards" / "0.npy", arrays)
    n_sup = int(round(n * supplemental_fraction))
    index = pd.DataFrame({
        "file_id": 0, "sequence_id": np.arange(n) + 10_000, "participant_id": rng.integers(participants, size=n),
        "phrase": [PHRASES[i % len(PHRASES)] for i in range(n)], "seq_len": lens,
        "is_supplemental": np.arange(n) >= n - n_sup, "shard": "0", "offset": offsets,
    })
    write_index(store, index)
    write_meta(store, "normalized", (130, 3))
    table = index[["sequence_id", "participant_id", "phrase", "seq_len"]].copy()
    table["store_pos"] = np.arange(n)
    table["is_sup"] = index["is_supplemental"].to_numpy()
    table["score"] = np.float32(0.8)
    table["fold"] = table["participant_id"] % 4
    return store, table
