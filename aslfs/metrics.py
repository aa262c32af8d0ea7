"""Metrics (docs/reference.md §1.8, §6.3).

- **Competition score** (primary number): ``(N − D) / N`` over the corpus, N = total reference characters, D = summed
  *plain* Levenshtein distance (insert, delete, substitute, each cost 1). Negative when the predictions are long and
  wrong enough.
- **Damerau score** (the reference's local ``metric_1``): the same formula with the unrestricted Damerau-Levenshtein
  distance (an adjacent transposition costs 1, and substrings may be edited again after a transposition). Since
  DL ≤ Levenshtein it is never below the competition score.
- **CER** (character error rate): the *mean over sequences* of ``Lev(ref, pred) / len(ref)``. This is deliberately
  not the corpus ratio ΣLev/ΣN, which is just ``1 − score``; the per-sequence mean weights every phrase equally.
- **Per-sequence OOF score** (§1.8): ``(len(ref) − DL(ref, pred)) / len(ref)``, can be negative.

An empty reference counts as length 1 in the per-sequence ratios (it never occurs in the competition data); corpus
ratios with N = 0 raise ``ValueError``. Distances come from :mod:`rapidfuzz.distance`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rapidfuzz.distance import DamerauLevenshtein, Levenshtein


def levenshtein(a: str, b: str) -> int:
    """Plain Levenshtein distance."""
    return Levenshtein.distance(a, b)


def damerau_levenshtein(a: str, b: str) -> int:
    """Unrestricted Damerau-Levenshtein distance ("ab" → "ba" is 1; "ca" → "abc" is 2)."""
    return DamerauLevenshtein.distance(a, b)


def _check(refs: Sequence[str], preds: Sequence[str]) -> None:
    if len(refs) != len(preds):
        raise ValueError(f"metrics: {len(refs)} references but {len(preds)} predictions")


def _corpus(refs, preds, dist) -> float:
    _check(refs, preds)
    n = sum(len(r) for r in refs)
    if n == 0:
        raise ValueError("metrics: the references hold no characters")
    d = sum(dist(r, p) for r, p in zip(refs, preds))
    return (n - d) / n


def competition_score(refs: Sequence[str], preds: Sequence[str]) -> float:
    """``(ΣN − ΣD) / ΣN`` with plain Levenshtein D (the competition metric)."""
    return _corpus(refs, preds, Levenshtein.distance)


def damerau_score(refs: Sequence[str], preds: Sequence[str]) -> float:
    """``(ΣN − ΣD) / ΣN`` with Damerau-Levenshtein D (the reference's local metric)."""
    return _corpus(refs, preds, DamerauLevenshtein.distance)


def cer(refs: Sequence[str], preds: Sequence[str]) -> float:
    """Mean over sequences of ``Lev(ref, pred) / max(len(ref), 1)``."""
    _check(refs, preds)
    if not refs:
        raise ValueError("metrics: no sequences")
    return float(np.mean([Levenshtein.distance(r, p) / max(len(r), 1) for r, p in zip(refs, preds)]))


def sequence_scores_dl(refs: Sequence[str], preds: Sequence[str]) -> np.ndarray:
    """Per-sequence OOF score ``(len(ref) − DL) / max(len(ref), 1)``, float64 (B,) (§1.8 step 4; not clipped)."""
    _check(refs, preds)
    return np.array([(len(r) - DamerauLevenshtein.distance(r, p)) / max(len(r), 1) for r, p in zip(refs, preds)],
                    dtype=np.float64)


def score_report(refs: Sequence[str], preds: Sequence[str], preds_pp: Sequence[str] | None = None) -> dict[str, float]:
    """``score`` (competition, plain Levenshtein), ``cer``, ``score_dl`` (Damerau) of the raw predictions, and
    ``score_pp`` (competition score of the post-processed predictions) when ``preds_pp`` is given (the key is
    absent otherwise, so the dict can go straight to a metrics logger)."""
    out = {"score": competition_score(refs, preds), "cer": cer(refs, preds), "score_dl": damerau_score(refs, preds)}
    if preds_pp is not None:
        out["score_pp"] = competition_score(refs, preds_pp)
    return out
