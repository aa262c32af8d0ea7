"""Participant-grouped fold split (docs/reference.md §1.5).

The reference's fold assignment code is not public; its folds were grouped by signer and about equal in size
(16,660-16,898 train sequences each). :func:`make_folds` reproduces those properties deterministically:

1. Participants are shuffled with ``seed`` (this only breaks ties), then ordered by their number of train
   (non-supplemental) sequences, largest first.
2. Each participant goes to the fold that currently holds the fewest train sequences (ties: fewest sequences in all,
   then lowest fold number) — the greedy "largest first" rule, which keeps every fold within one participant's
   size of the others.
3. Participants that only have supplemental sequences are then placed the same way by supplemental count.

Every sequence of a participant, supplemental ones included, gets that participant's fold, so no signer is ever on
both sides of a split (the trainer drops fold k, supplemental rows included, when training fold k).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.atomic import write_csv
from aslfs.config import FoldsParams
from aslfs.data.store import read_table
from aslfs.errors import DataError

FOLD_COLUMNS = ("sequence_id", "participant_id", "fold", "is_supplemental")


def make_folds(index_df: pd.DataFrame, n_folds: int, seed: int) -> pd.DataFrame:
    """Assign each sequence a fold 0..n_folds-1, grouped by participant and balanced by sequence count.

    Args:
        index_df: one row per sequence with ``sequence_id``, ``participant_id``, ``is_supplemental``.
        n_folds: number of folds (at least 2).
        seed: tie-breaking seed; the result is a pure function of (rows, n_folds, seed).

    Returns:
        DataFrame ``sequence_id, participant_id, fold, is_supplemental`` in ``index_df`` row order.

    Raises:
        DataError: fewer participants (with train sequences, when there are any) than folds.
    """
    if n_folds < 2:
        raise DataError(f"folds: n_folds must be at least 2, got {n_folds}")
    df = index_df.loc[:, ["sequence_id", "participant_id", "is_supplemental"]].copy()
    df["is_supplemental"] = df["is_supplemental"].astype(bool)
    counts = (df.assign(train=~df.is_supplemental, supp=df.is_supplemental)
              .groupby("participant_id")[["train", "supp"]].sum().astype(np.int64))
    have = int((counts.train > 0).sum()) or len(counts)  # participants that can anchor a fold
    if have < n_folds:
        raise DataError(f"folds: {n_folds} folds need at least {n_folds} participants with sequences, got {have}")

    rng = np.random.default_rng(seed)
    participants = counts.index.to_numpy()[rng.permutation(len(counts))]
    counts = counts.loc[participants]
    load = np.zeros((n_folds, 2), np.int64)  # per fold: train sequences, all sequences
    fold_of: dict[int, int] = {}
    with_train = counts[counts.train > 0].sort_values("train", ascending=False, kind="stable")
    supp_only = counts[counts.train == 0].sort_values("supp", ascending=False, kind="stable")
    for pid, row in with_train.iterrows():
        f = min(range(n_folds), key=lambda k: (load[k, 0], load[k, 1], k))
        fold_of[pid] = f
        load[f] += (row.train, row.train + row.supp)
    supp_load = np.zeros(n_folds, np.int64)
    for pid, row in with_train.iterrows():
        supp_load[fold_of[pid]] += row.supp
    for pid, row in supp_only.iterrows():
        f = min(range(n_folds), key=lambda k: (supp_load[k], k))
        fold_of[pid] = f
        supp_load[f] += row.supp
    df["fold"] = df.participant_id.map(fold_of).astype(np.int64)
    return df.loc[:, list(FOLD_COLUMNS)].reset_index(drop=True)


def fold_summary(folds: pd.DataFrame) -> dict:
    """Per fold: participants, train and supplemental sequences."""
    out = {}
    for f, g in folds.groupby("fold"):
        out[int(f)] = {"participants": int(g.participant_id.nunique()), "train": int((~g.is_supplemental).sum()),
                       "supplemental": int(g.is_supplemental.sum())}
    return out


def write_folds(store_dir: str | Path, out_csv: str | Path, params: FoldsParams) -> dict:
    """The ``folds`` stage: read the selected store's index, write ``out_csv`` atomically, return a summary.

    Args:
        store_dir: a store directory (only its ``index.parquet`` is read).
        out_csv: destination csv (``sequence_id, participant_id, fold, is_supplemental``).
        params: the ``folds`` section (``n_folds``, ``seed``).
    """
    index_path = Path(store_dir) / "index.parquet"
    if not index_path.is_file():
        raise DataError(f"{index_path}: index not found (run the select stage first)")
    index = read_table(index_path, columns=["sequence_id", "participant_id", "is_supplemental"])
    folds = make_folds(index, params.n_folds, params.seed)
    write_csv(out_csv, folds)
    return {"sequences": len(folds), "n_folds": params.n_folds, "seed": params.seed, "folds": fold_summary(folds)}
