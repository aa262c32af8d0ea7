"""Scores of the exported TFLite file on held-out sequences.

Every prediction comes from the submitted file itself (:class:`aslfs.export.runtime.TFLiteRecognizer`): with the
``diagnostics`` signature one call gives the raw greedy phrase, the confidence and the post-processed phrase.

Reported (:func:`summarize`):

- ``score`` — competition score (corpus ``(N − D)/N``, plain Levenshtein) of the raw predictions; ``cer`` (mean
  per-sequence character error rate) and ``score_dl`` (Damerau-Levenshtein, the reference's local metric);
- ``score_pp`` — competition score after the post-processing rule (what the submission returns), with ``cer_pp``
  and ``score_dl_pp``; ``dummy_fraction`` — share of sequences replaced by the dummy phrase;
- breakdowns by sequence length (bins of raw frames) and by participant, and the most frequent character
  confusions (substitutions, deletions as ``ref → ""``, insertions as ``"" → pred``) of the raw predictions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from aslfs import metrics
from aslfs.evaluate.heldout import EvalItem

PREDICTION_COLUMNS = ("sequence_id", "participant_id", "seq_len", "label", "raw", "phrase", "confidence", "dummy")


def predict_items(recognizer, items: Iterable[EvalItem], total: int | None = None, progress: bool | None = None) -> pd.DataFrame:
    """Run the TFLite file over ``items``: one row per sequence with ``PREDICTION_COLUMNS``.

    Args:
        recognizer: a :class:`~aslfs.export.runtime.TFLiteRecognizer`.
        items: the sequences.
        total: number of items (for the progress bar), when known.
        progress: show a progress bar (``None``: only on a terminal).
    """
    from tqdm.auto import tqdm

    rows = []
    for item in tqdm(items, total=total, disable=False if progress else None if progress is None else True,
                     desc="evaluate", unit="seq"):
        d = recognizer.diagnose(item.frames)
        rows.append((int(item.sequence_id), int(item.participant_id), d.frames, item.phrase, d.raw, d.phrase,
                     d.confidence, d.dummy))
    table = pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))
    table["dummy"] = table["dummy"].astype(bool)
    return table


def _group_scores(table: pd.DataFrame, key: pd.Series, name: str) -> pd.DataFrame:
    out = []
    for value, group in table.groupby(key, sort=True, observed=True):
        refs, raw, pp = list(group["label"]), list(group["raw"]), list(group["phrase"])
        out.append({
            name: value,
            "sequences": len(group),
            "characters": int(sum(len(r) for r in refs)),
            "score": metrics.competition_score(refs, raw),
            "score_pp": metrics.competition_score(refs, pp),
            "cer": metrics.cer(refs, raw),
        })
    return pd.DataFrame(out, columns=[name, "sequences", "characters", "score", "score_pp", "cer"])


def length_bins(seq_lens: Sequence[int], edges: Sequence[int]) -> pd.Series:
    """Bin labels like ``"0-49"``, ``"384+"`` for raw frame counts, from sorted lower ``edges``."""
    edges = sorted(int(e) for e in edges)
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]
    index = np.searchsorted(np.asarray(edges), np.asarray(seq_lens), side="right") - 1
    index = np.clip(index, 0, len(labels) - 1)
    cat = pd.Categorical([labels[i] for i in index], categories=labels, ordered=True)
    return pd.Series(cat, name="length")


def confusions(refs: Sequence[str], preds: Sequence[str], top: int = 20) -> list[dict]:
    """The ``top`` most frequent character edits turning references into predictions (Levenshtein alignment).

    Returns:
        ``[{"ref": "a", "pred": "e", "count": 12, "kind": "replace"}, ...]``; deletions have ``pred = ""`` and
        insertions ``ref = ""``; ties ordered by (ref, pred).
    """
    from rapidfuzz.distance import Levenshtein

    counts: Counter = Counter()
    for ref, pred in zip(refs, preds):
        for tag, i, j in Levenshtein.editops(ref, pred).as_list():
            if tag == "replace":
                counts[(ref[i], pred[j], tag)] += 1
            elif tag == "delete":
                counts[(ref[i], "", tag)] += 1
            else:
                counts[("", pred[j], tag)] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))[:top]
    return [{"ref": r, "pred": p, "count": int(c), "kind": k} for (r, p, k), c in ranked]


def summarize(table: pd.DataFrame, edges: Sequence[int] = (0, 50, 100, 150, 200, 300, 384),
              top_confusions: int = 20) -> dict:
    """Metrics, breakdowns and confusions of a :func:`predict_items` table.

    Returns:
        ``{"metrics": {...}, "by_length": DataFrame, "by_participant": DataFrame, "confusions": [...]}``.
    """
    if table.empty:
        from aslfs.errors import DataError

        raise DataError("evaluation: no held-out sequences to score")
    refs, raw, pp = list(table["label"]), list(table["raw"]), list(table["phrase"])
    report = metrics.score_report(refs, raw, pp)
    report["cer_pp"] = metrics.cer(refs, pp)
    report["score_dl_pp"] = metrics.damerau_score(refs, pp)
    report["dummy_fraction"] = float(np.mean(table["dummy"])) if len(table) else 0.0
    report["sequences"] = int(len(table))
    report["characters"] = int(sum(len(r) for r in refs))
    return {
        "metrics": {k: (round(float(v), 6) if isinstance(v, float) else v) for k, v in report.items()},
        "by_length": _group_scores(table, length_bins(table["seq_len"], edges), "length"),
        "by_participant": _group_scores(table, table["participant_id"], "participant_id"),
        "confusions": confusions(refs, raw, top_confusions),
    }


def evaluate_tflite(model, items: Iterable[EvalItem], total: int | None = None, threads: int = 2,
                    length_edges: Sequence[int] = (0, 50, 100, 150, 200, 300, 384), top_confusions: int = 20,
                    progress: bool | None = None) -> tuple[dict, pd.DataFrame]:
    """Score a TFLite file (path, submission folder or MLflow model URI) on ``items``.

    Returns:
        ``(summary, table)`` as :func:`summarize` and :func:`predict_items`; ``summary["metrics"]`` also holds
        ``seconds_per_sequence`` (mean wall time per sequence with ``threads`` interpreter threads).
    """
    from aslfs.export.runtime import TFLiteRecognizer
    from aslfs.registry import resolve_tflite

    recognizer = TFLiteRecognizer(resolve_tflite(model), threads=threads)
    start = time.perf_counter()
    table = predict_items(recognizer, items, total=total, progress=progress)
    elapsed = time.perf_counter() - start
    summary = summarize(table, length_edges, top_confusions)
    summary["metrics"]["seconds_per_sequence"] = round(elapsed / max(len(table), 1), 6)
    return summary, table
