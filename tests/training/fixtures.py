"""A tiny normalised sequence store and folds table for the training tests (random but learnable data), and the
params of a training on it that takes seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.data.store import write_index, write_meta, write_shard

PHRASES = ("3 main st", "coffee", "hello world", "42 elm", "www.a.com", "+1-555", "blue sky", "zebra 9")


def make_store(root: str | Path, n: int = 48, participants: int = 6, supplemental: int = 0,
               frames: tuple[int, int] = (12, 60), seed: int = 0, n_folds: int = 4,
               phrases: tuple[str, ...] = PHRASES) -> tuple[Path, Path]:
    """Write ``<root>/store`` (normalised, (T, 130, 3)) and ``<root>/folds.csv``; returns their paths.

    Each phrase has its own fixed random template (so the mapping landmarks → phrase is learnable), plus noise.
    Folds are by participant; the last ``supplemental`` rows are supplemental.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    templates = {p: rng.normal(size=(8, 130, 3)).astype(np.float32) for p in phrases}
    arrays, rows = [], []
    for i in range(n + supplemental):
        phrase = phrases[i % len(phrases)]
        t = int(rng.integers(frames[0], frames[1] + 1))
        base = templates[phrase][np.minimum(np.arange(t) * 8 // t, 7)]
        arrays.append((base + 0.1 * rng.normal(size=base.shape)).astype(np.float32))
        rows.append({"file_id": 1, "sequence_id": 1000 + i, "participant_id": int(i % participants), "phrase": phrase,
                     "seq_len": t, "is_supplemental": i >= n, "shard": "1"})
    store = root / "store"
    offsets = write_shard(store / "shards" / "1.npy", arrays)
    index = pd.DataFrame(rows)
    index["offset"] = offsets
    write_index(store, index)
    write_meta(store, "normalized", (130, 3))
    folds = index[["sequence_id", "participant_id", "is_supplemental"]].copy()
    folds["fold"] = folds["participant_id"] % n_folds
    folds = folds[["sequence_id", "participant_id", "fold", "is_supplemental"]]
    folds_csv = root / "folds.csv"
    folds.to_csv(folds_csv, index=False)
    return store, folds_csv


def tiny_round1_params(epochs: int, round1: dict | None = None, **train) -> dict:
    """``params.yaml`` content for a round-1 training on the tiny preset that takes seconds: no backward decoder nor
    confidence head, batches of 4, buckets up to 48 frames, evaluation every 3 epochs, neither flips nor CutMix.
    ``round1`` adds to or overrides ``train.round1``; keyword arguments add to or override ``train``."""
    return {
        "train": {
            "round1": {"preset": "tiny", "model_overrides": {"backward_decoder": False, "confidence_head": False},
                       "epochs": epochs, "batch_size": 4, "peak_lr": 3e-3, "warmup_epochs": 1, "eval_every": 3,
                       "min_seq_len": 1, **(round1 or {})},
            # Keras' worker pool: the shared-memory pool (the default) costs a spawn per training; test_train covers it
            "buckets": [16, 32, 48], "eval_batch_size": 16, "worker_transport": "keras", **train,
        },
        "augment": {"flip_p": 0.0, "cutmix_p": 0.0},
        "sampling": {"max_len": 64},
    }


def training_batches_setup(tmp_path, n: int, seed: int, **options):
    """A tiny store of ``n`` sequences and the arguments of a training :class:`SequenceBatches` over all of it
    (round-1 augmentation, buckets 32/64, one window of 2 batches, no workers): ``(store, table, kwargs)``;
    ``options`` add to or override the keyword arguments."""
    from aslfs.config import AugmentParams
    from aslfs.data.augment import build_augmentation
    from aslfs.data.store import SequenceStore

    store_dir, _ = make_store(tmp_path, n=n)
    store = SequenceStore(store_dir)
    table = store.index.copy()
    table["store_pos"], table["is_sup"], table["score"] = np.arange(len(table)), False, np.float32(1.0)
    kwargs = dict(training=True, augmentation=build_augmentation(AugmentParams(), round=1), seed=seed,
                  buckets=(32, 64), bucket_window=2, max_len=64, workers=0, **options)
    return store, table, kwargs


class DyingStore:
    """A store whose first read in a loader worker process kills that process (SIGKILL, as the kernel's out-of-memory
    killer would), once: the file ``flag`` records that it happened. Picklable into spawned workers."""

    def __init__(self, store, flag: str | Path):
        self.store, self.flag, self.owner = store, str(flag), __import__("os").getpid()
        self.index = store.index

    def load(self, i: int) -> np.ndarray:
        import os
        import signal

        if os.getpid() != self.owner and not os.path.exists(self.flag):
            Path(self.flag).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.store.load(i)
