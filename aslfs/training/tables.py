"""The loader tables of one training (docs/reference.md §1.6, §1.8, §1.9): the folds table joined to the normalised
store's index, split into training and validation rows for a (round, fold).

Round 1: training rows are the non-supplemental rows of the other folds with at least ``min_seq_len`` raw frames.
Round 2: training rows are all rows of the other folds (supplemental rows with phrases of at most
``sampling.max_supplemental_phrase_len`` characters included) with their OOF ``score`` (clipped to [0, 1];
supplemental rows ``sampling.supplemental_score``). Validation rows are the non-supplemental rows of the validation
fold, unfiltered. CutMix partners come from the training table itself.

Both rounds: with ``train.min_hand_frames_per_char`` > 0 the trainer then drops the training rows with no more than
that many hand frames per phrase character (:func:`filter_hand_frames`; the 12th-place cleaning rule).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.errors import ConfigError, DataError
from aslfs.vocab import MAX_TARGET_LEN

MAX_SUPPLEMENTAL_PHRASE_LEN = MAX_TARGET_LEN - 1  # 32: supplemental rows with phrase_len < 33 (§1.6)


def _read_csv(path, what: str, required: tuple[str, ...]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    df = pd.read_csv(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path}: {what} lacks column(s) {', '.join(missing)}")
    return df


def read_folds(folds_csv) -> pd.DataFrame:
    return _read_csv(folds_csv, "folds table", ("sequence_id", "fold"))


def read_oof(oof_csv) -> pd.DataFrame:
    return _read_csv(oof_csv, "OOF table", ("sequence_id", "score"))


def hand_frame_counts(store, positions) -> np.ndarray:
    """Frames with a hand of the store's sequences at ``positions`` (int64): frames where any hand landmark is
    non-zero. In the normalised store a missing landmark is 0 (docs/reference.md §2.1), and a detected hand has
    landmarks off the sequence mean. Reads each sequence once (memory-mapped shards)."""
    from aslfs.landmarks import HANDS

    counts = np.zeros(len(positions), np.int64)
    for k, pos in enumerate(np.asarray(positions, np.int64)):
        hands = store.load(int(pos))[:, HANDS]
        counts[k] = int(np.count_nonzero(np.any(hands.reshape(len(hands), -1) != 0, axis=1)))
    return counts


def filter_hand_frames(train: pd.DataFrame, store, min_per_char: float) -> pd.DataFrame:
    """``train`` without the rows with at most ``min_per_char`` hand frames per phrase character (0 = unchanged)."""
    if min_per_char <= 0 or train.empty:
        return train
    chars = train["phrase"].astype(str).str.len().clip(lower=1).to_numpy()
    keep = hand_frame_counts(store, train["store_pos"].to_numpy()) > min_per_char * chars
    return train[keep].reset_index(drop=True)


def build_tables(index: pd.DataFrame, folds: pd.DataFrame, round: int, fold: int, min_seq_len: int = 15,
                 oof: pd.DataFrame | None = None, supplemental_score: float = 0.5,
                 max_supplemental_phrase_len: int = MAX_SUPPLEMENTAL_PHRASE_LEN
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, validation)`` loader tables for one (round, fold) (module docstring). The training table is also the
    pool of CutMix partners (docs/reference.md §1.8: the reference draws partners from the dataset being trained on).

    Args:
        index: the store index (``sequence_id, participant_id, phrase, seq_len, is_supplemental``); its row
            positions are the ``store_pos`` of the tables.
        folds: ``sequence_id, fold`` (``is_supplemental`` / ``participant_id`` are taken from the store).
        round, fold: fold −1 = full fit, validated on fold 0.
        min_seq_len: training rows with fewer raw frames are dropped.
        oof: round 2: ``sequence_id, score`` (the OOF table).
        supplemental_score: round-2 score of supplemental rows.
        max_supplemental_phrase_len: round 2 keeps supplemental rows with phrases up to this length.
    """
    from aslfs.data.sample import score_column

    if round not in (1, 2):
        raise ConfigError(f"train: round must be 1 or 2, got {round}")
    df = index.reset_index(drop=True).copy()
    df["store_pos"] = np.arange(len(df))
    df["is_sup"] = df["is_supplemental"].astype(bool)
    df = df.merge(folds[["sequence_id", "fold"]], on="sequence_id", how="inner")
    if df.empty:
        raise DataError("train: no sequence of the folds table is in the store (wrong store or folds file?)")
    if fold >= 0 and not (df["fold"] == fold).any():
        raise ConfigError(f"train: fold {fold} does not exist in the folds table (folds: {sorted(df.fold.unique())})")
    val_fold = fold if fold >= 0 else 0
    in_train = df["fold"] != fold if fold >= 0 else np.ones(len(df), bool)
    val = df[(df["fold"] == val_fold) & ~df["is_sup"]].copy()
    if round == 1:
        train = df[in_train & ~df["is_sup"] & (df["seq_len"] >= min_seq_len)].copy()
        train["score"] = np.float32(1.0)
        val["score"] = np.float32(1.0)
    else:
        if oof is None:
            raise ConfigError("train: round 2 needs the OOF table")
        scores = oof[["sequence_id", "score"]].drop_duplicates("sequence_id")
        keep_sup = df["phrase"].astype(str).str.len() <= max_supplemental_phrase_len
        train = df[in_train & (~df["is_sup"] | keep_sup) & (df["seq_len"] >= min_seq_len)]
        train = train.merge(scores, on="sequence_id", how="left")
        train["score"] = score_column(train, supplemental_score, sup_col="is_sup")
        val = val.merge(scores, on="sequence_id", how="left")
        val["score"] = np.clip(val["score"].fillna(1.0).to_numpy(np.float32), 0.0, 1.0)
    if train.empty:
        raise DataError(f"train: no training rows for round {round}, fold {fold}")
    if val.empty:
        raise DataError(f"train: no validation rows in fold {val_fold}")
    cols = ["store_pos", "sequence_id", "participant_id", "phrase", "seq_len", "is_sup", "score", "fold"]
    train = train[cols].reset_index(drop=True)
    val = val[cols].reset_index(drop=True)
    return train, val


def file_digest(*paths) -> str:
    """Short sha256 over the bytes of some files (the data version)."""
    h = hashlib.sha256()
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        if p.is_dir():
            for name in ("index.parquet", "meta.json"):
                if (p / name).is_file():
                    h.update((p / name).read_bytes())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]
