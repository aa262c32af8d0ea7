"""Per-sample pipeline (docs/reference.md §2.2, §3.0, §1.8–§1.9): augmentation order, time resize/pad to ``max_len``,
targets, and the round-2 epoch sampling.

Training order (§3.0), :func:`make_train_sample`: (load + normalise, done by the caller) → flip (p ½) → outer CutMix
with a same-participant partner (p ½) → the round's ``Compose`` list → resize or pad to ``max_len`` → targets with
decoder-input masking. Evaluation, :func:`make_eval_sample`: resize or pad → targets, nothing random.

**Time resize** (:func:`resize_time`), used when T > max_len, the same in training and in the exported graph:

- ``linear`` (default): half-pixel-centre linear interpolation along time, identical to ``tf.image.resize`` /
  ``keras.ops.image.resize(..., interpolation="bilinear", antialias=False)`` applied to the (T, 130) "image"
  (the landmark axis is kept, so its interpolation is the identity). For output frame i of L, in float32:
  ``s = float32(T) / float32(L)``; ``src = (i + 0.5)·s − 0.5``; ``f = ⌊src⌋``; ``lo = max(f, 0)``;
  ``hi = min(⌈src⌉, T − 1)``; ``w = src − f``; ``out[i] = x[lo] + (x[hi] − x[lo])·w``.
  Export: ``keras.ops.image.resize(x[None], (L, 130), interpolation="bilinear", antialias=False,
  data_format="channels_last")[0]`` on the (T, 130, 3) array computes exactly this (tested against it).
- ``nearest``: the reference's training code (``F.interpolate`` default): ``out[i] = x[⌊i·T/L⌋]``. (The reference
  TFLite used bilinear, hence training/inference disagreed for T > 384 there, §2.2 QUIRK.)

**Pad**: T < max_len appends ``max_len − T`` all-zero frames; ``padding_mask`` is True on the T real frames (all True
after a resize). ``seq_len`` is the raw frame count before augmentation (used by post-processing only).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from aslfs.data.augment import Augmentation, flip, nearest_indices, outer_cutmix
from aslfs.data.targets import decoder_input_ids, encode_target
from aslfs.errors import DataError

#: ``partner_fn(rng)``: a normalised CutMix partner ``(x, phrase, score)`` (same participant, other sequence) or None.
PartnerFn = Callable[[np.random.Generator], "tuple[np.ndarray, str, float | None] | None"]

MAX_LEN = 384


def linear_resize_weights(length: int, new_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lo, hi, w)`` of the half-pixel-centre linear resize of ``length`` frames to ``new_length`` (module doc)."""
    scale = np.float32(length) / np.float32(new_length)
    src = (np.arange(new_length, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    lo = np.maximum(floor, 0).astype(np.int64)
    hi = np.minimum(np.ceil(src), length - 1).astype(np.int64)
    return lo, hi, (src - floor).astype(np.float32)


def resize_time(x: np.ndarray, length: int, mode: str = "linear") -> np.ndarray:
    """Resize the time axis of (T, ...) ``x`` to ``length`` frames with ``mode`` ``linear`` or ``nearest``
    (exact math in the module doc). ``T == length`` returns a copy."""
    n = len(x)
    if n == 0:
        raise ValueError("resize_time: empty sequence")
    if n == length:
        return x.copy()
    if mode == "nearest":
        return x[nearest_indices(n, length)]
    if mode == "linear":
        lo, hi, w = linear_resize_weights(n, length)
        a = x[lo]
        return a + (x[hi] - a) * w.reshape((-1,) + (1,) * (x.ndim - 1))
    raise ValueError(f"resize_time: mode must be 'linear' or 'nearest', got {mode!r}")


def resize_or_pad(x: np.ndarray, max_len: int = MAX_LEN, mode: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """(T, 130, 3) → ``(landmarks (max_len, 130, 3) float32, padding_mask (max_len,) bool)`` (§2.2)."""
    n = len(x)
    if n >= max_len:
        return resize_time(x, max_len, mode).astype(np.float32, copy=False), np.ones(max_len, dtype=bool)
    out = np.zeros((max_len,) + x.shape[1:], dtype=np.float32)
    out[:n] = x
    mask = np.zeros(max_len, dtype=bool)
    mask[:n] = True
    return out, mask


def _sample(x, phrase, score, seq_len, rng, decoder_mask_p, max_len, resize_mode) -> dict:
    landmarks, padding_mask = resize_or_pad(x, max_len, resize_mode)
    labels = encode_target(phrase)
    return {
        "landmarks": landmarks,
        "padding_mask": padding_mask,
        "decoder_input_ids": decoder_input_ids(labels, rng, decoder_mask_p),
        "labels": labels,
        "seq_len": np.int32(seq_len),
        "score": np.float32(1.0 if score is None else score),
    }


def _check(x: np.ndarray) -> np.ndarray:
    if x.ndim != 3 or x.shape[0] == 0:
        raise DataError(f"sample pipeline: expected a normalised (T ≥ 1, 130, 3) sequence, got shape {x.shape}")
    return x


def make_train_sample(x_norm: np.ndarray, phrase: str, score: float | None, seq_len: int | None,
                      rng: np.random.Generator, aug: Augmentation, partner_fn: PartnerFn | None = None,
                      max_len: int = MAX_LEN, resize_mode: str = "linear", decoder_mask_p: float = 0.2,
                      trace: list | None = None) -> dict:
    """One training sample in the reference order (§3.0).

    Args:
        x_norm: float32 (T, 130, 3), globally normalised (``normalize_np``), 0 = missing.
        phrase: the target text.
        score: round-2 quality score in [0, 1] (already clipped, :func:`score_column`), or None (round 1: 1.0).
        seq_len: raw frame count for post-processing; None → T of ``x_norm``.
        rng: the sample's random generator (every draw comes from it).
        aug: :func:`aslfs.data.augment.build_augmentation` of the round (flip_p, cutmix_p, Compose list).
        partner_fn: ``partner_fn(rng) -> (x_norm2, phrase2, score2) | None``, called only when CutMix fires; None or a
            None result skips CutMix. The partner is not flipped.
        max_len, resize_mode: §2.2, see the module doc.
        decoder_mask_p: §3.12 decoder-input masking probability.
        trace: optional list collecting the names of the transforms that fired ("flip", "cutmix", ...).

    Returns:
        dict: ``landmarks`` float32 (max_len, 130, 3), ``padding_mask`` bool (max_len,), ``decoder_input_ids`` int32
        (33,) (masked, shifted), ``labels`` int32 (33,) (unmasked), ``seq_len`` int32, ``score`` float32 (the
        CutMix-weighted score).
    """
    x = _check(np.asarray(x_norm, dtype=np.float32))
    seq_len = len(x) if seq_len is None else seq_len
    if rng.random() < aug.flip_p:
        x = flip(x)
        if trace is not None:
            trace.append("flip")
    if rng.random() < aug.cutmix_p and partner_fn is not None:
        partner = partner_fn(rng)
        if partner is not None:
            x2, phrase2, score2 = partner
            x, phrase, score = outer_cutmix(x, phrase, score, _check(np.asarray(x2, dtype=np.float32)), phrase2,
                                            score2, rng)
            if trace is not None:
                trace.append("cutmix")
    x = aug(x, rng, trace=trace)
    return _sample(x, phrase, score, seq_len, rng, decoder_mask_p, max_len, resize_mode)


def make_eval_sample(x_norm: np.ndarray, phrase: str, score: float | None = None, seq_len: int | None = None,
                     max_len: int = MAX_LEN, resize_mode: str = "linear") -> dict:
    """One validation sample: resize or pad, unmasked targets (§3.0: steps 1 and 5 only). Same keys as
    :func:`make_train_sample`."""
    x = _check(np.asarray(x_norm, dtype=np.float32))
    return _sample(x, phrase, score, len(x) if seq_len is None else seq_len, None, 0.0, max_len, resize_mode)


# ----------------------------------------------------------------------------------------------------------------------
# Round-2 sampling (§1.8, §1.9)
# ----------------------------------------------------------------------------------------------------------------------


def score_column(df: pd.DataFrame, supplemental_score: float = 0.5, score_col: str = "score",
                 sup_col: str = "is_sup", id_col: str = "sequence_id") -> np.ndarray:
    """Per-row training score, float32: the OOF ``score`` clipped to [0, 1]; supplemental rows get
    ``supplemental_score``; without a score column every non-supplemental row scores 1.0 (§1.8 step 7).

    Raises :class:`DataError` when a non-supplemental row's score is missing (NaN)."""
    sup = _sup_mask(df, sup_col)
    if score_col in df.columns:
        score = df[score_col].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(score) & ~sup
        if bad.any():
            first = df[id_col].iloc[int(np.argmax(bad))] if id_col in df.columns else int(np.argmax(bad))
            raise DataError(f"score column '{score_col}': {int(bad.sum())} non-supplemental rows have no score "
                            f"(first: {id_col} {first})")
        score = np.clip(score, 0.0, 1.0)
    else:
        score = np.ones(len(df))
    score[sup] = supplemental_score
    return score.astype(np.float32)


def _sup_mask(df: pd.DataFrame, sup_col: str) -> np.ndarray:
    if sup_col not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return df[sup_col].to_numpy().astype(bool)


def round2_epoch_indices(index_df: pd.DataFrame, rng: np.random.Generator, phrase_col: str = "phrase",
                         sup_col: str = "is_sup") -> np.ndarray:
    """Row positions (``iloc``) of one round-2 training epoch (§1.9).

    Every non-supplemental row once, in table order, then one row drawn uniformly at random for each unique
    supplemental phrase (phrases in order of first appearance). The caller shuffles. Length N_ns + U.
    """
    sup = _sup_mask(index_df, sup_col)
    base = np.flatnonzero(~sup)
    sup_pos = np.flatnonzero(sup)
    if len(sup_pos) == 0:
        return base
    codes, uniques = pd.factorize(index_df[phrase_col].to_numpy()[sup_pos])
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(uniques))
    starts = np.cumsum(counts) - counts
    pick = starts + (rng.random(len(uniques)) * counts).astype(np.int64)
    return np.concatenate([base, sup_pos[order[pick]]])


class PartnerSampler:
    """CutMix partner rows (§3.2, §1.9): for a row, a uniformly drawn other row of the same participant from the
    whole train-mode table (supplemental rows included), or None when the participant has no other sequence.

    Args:
        index_df: the train-mode table (its row positions are what :meth:`__call__` takes and returns).
        participant_col, sequence_col: column names; rows with the anchor's ``sequence_id`` are never drawn.
    """

    def __init__(self, index_df: pd.DataFrame, participant_col: str = "participant_id",
                 sequence_col: str = "sequence_id"):
        codes, _ = pd.factorize(index_df[participant_col].to_numpy())
        self._order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes)
        self._starts = (np.cumsum(counts) - counts)[codes]
        self._counts = counts[codes]
        self._rank = np.empty(len(codes), dtype=np.int64)
        self._rank[self._order] = np.arange(len(codes)) - (np.cumsum(counts) - counts)[codes[self._order]]
        self._seq = index_df[sequence_col].to_numpy()

    def __call__(self, row: int, rng: np.random.Generator) -> int | None:
        """Row position of a partner for row position ``row``, or None."""
        n = int(self._counts[row])
        if n < 2:
            return None
        for _ in range(8):  # retry only if a duplicated sequence_id sits in the same participant
            j = int(rng.integers(n - 1))
            j += j >= self._rank[row]
            cand = int(self._order[self._starts[row] + j])
            if self._seq[cand] != self._seq[row]:
                return cand
        return None
