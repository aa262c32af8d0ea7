"""Evaluation of the exported TFLite file on held-out sequences (docs/reference.md §6.3): what a submission would score.

Every prediction comes from the submitted file itself (:class:`aslfs.export.runtime.TFLiteRecognizer`): with the
``diagnostics`` signature one call gives the raw greedy phrase, the confidence and the post-processed phrase.

Reported (:func:`summarize`):

- ``score`` — competition score (corpus ``(N − D)/N``, plain Levenshtein) of the raw predictions; ``cer`` (mean
  per-sequence character error rate) and ``score_dl`` (Damerau-Levenshtein, the reference's local metric);
- ``score_pp`` — competition score after the post-processing rule (what the submission returns), with ``cer_pp``
  and ``score_dl_pp``; ``dummy_fraction`` — share of sequences replaced by the dummy phrase;
- breakdowns by sequence length (bins of raw frames) and by participant, and the most frequent character
  confusions (substitutions, deletions as ``ref → ""``, insertions as ``"" → pred``) of the raw predictions.

:func:`write_outputs` writes the metrics (a DVC metrics file) and the plot data (DVC plots: CSV tables).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aslfs import metrics

PREDICTION_COLUMNS = ("sequence_id", "participant_id", "seq_len", "label", "raw", "phrase", "confidence", "dummy")


@dataclass(frozen=True)
class EvalItem:
    """One held-out sequence: raw frames ``(T, 390)`` in ``SELECTED_COLUMNS`` order and its label."""

    sequence_id: int
    frames: np.ndarray
    phrase: str
    participant_id: int = -1


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


def write_outputs(summary: dict, table: pd.DataFrame, metrics_path: str | Path, out_dir: str | Path,
                  extra_metrics: dict | None = None) -> dict[str, Path]:
    """Write the DVC metrics file and the plot/report files; returns their paths by name.

    ``metrics_path`` (JSON, flat numbers): the metrics plus ``extra_metrics``. ``out_dir``: ``predictions.csv``,
    ``by_length.csv``, ``by_participant.csv``, ``confusions.csv`` (DVC plots read the CSVs).
    """
    metrics_path = Path(metrics_path)
    out_dir = Path(out_dir)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    values = {**summary["metrics"], **(extra_metrics or {})}
    metrics_path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    paths = {"metrics": metrics_path}
    for name in ("by_length", "by_participant"):
        path = out_dir / f"{name}.csv"
        summary[name].to_csv(path, index=False, float_format="%.6f")
        paths[name] = path
    path = out_dir / "confusions.csv"
    pd.DataFrame(summary["confusions"], columns=["ref", "pred", "count", "kind"]).to_csv(path, index=False)
    paths["confusions"] = path
    path = out_dir / "predictions.csv"
    table.to_csv(path, index=False, float_format="%.6f")
    paths["predictions"] = path
    return paths


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


# ---------------------------------------------------------------------------------------------- held-out data


def heldout_items(data: str | Path, folds_csv: str | Path | None = None, fold: int | None = None,
                  max_sequences: int = 0) -> tuple[Iterable[EvalItem], int]:
    """The held-out sequences to evaluate, as ``(items, count)``.

    Args:
        data: a *selected* sequence store (``aslfs.data.store``: raw ``(T, 390)`` frames) or a competition-format
            directory (its csv files).
        folds_csv: the fold table; with ``fold``, only the **non-supplemental** sequences of that fold are used
            (the trainer's validation rows). ``None``: every sequence of ``data``.
        fold: the held-out fold.
        max_sequences: keep the first ``max_sequences`` (0 = all).
    """
    from aslfs.errors import DataError

    data = Path(data)
    if (data / "index.parquet").is_file():
        from aslfs.data.store import SequenceStore

        store = SequenceStore(data)
        if store.frame_shape != (390,):
            raise DataError(f"{data}: frames of shape {store.frame_shape}; evaluation needs the selected store "
                            "(raw (T, 390) frames), not the normalised one")
        index = store.index.reset_index(drop=True).assign(position=lambda d: range(len(d)))
        loader = "store"
    elif data.is_dir():
        from aslfs.data.reader import read_metadata

        index = read_metadata(data)
        loader = "raw"
    else:
        raise DataError(f"{data}: not a selected store or a competition directory")
    if folds_csv is not None and fold is not None:
        folds_csv = Path(folds_csv)
        if not folds_csv.is_file():
            raise DataError(f"{folds_csv}: fold table not found")
        folds = pd.read_csv(folds_csv)
        for column in ("sequence_id", "fold"):
            if column not in folds.columns:
                raise DataError(f"{folds_csv}: no column {column}")
        chosen = set(folds.loc[folds["fold"] == int(fold), "sequence_id"].astype(int))
        if not chosen:
            raise DataError(f"{folds_csv}: fold {fold} holds no sequences")
        index = index[index["sequence_id"].astype(int).isin(chosen) & ~index["is_supplemental"].astype(bool)]
    if max_sequences:
        index = index.head(int(max_sequences))
    if index.empty:
        raise DataError(f"{data}: no held-out sequences to evaluate")

    def from_store():
        for row in index.itertuples(index=False):
            yield EvalItem(int(row.sequence_id), store.load(int(row.position)), str(row.phrase),
                           int(row.participant_id))

    def from_raw():
        from aslfs.data.reader import read_file_sequence, resolve_path

        for row in index.itertuples(index=False):
            path = resolve_path(data, row.path)
            if path is None:
                raise DataError(f"{data}: path {row.path!r} leaves the data directory")
            yield EvalItem(int(row.sequence_id), read_file_sequence(path, int(row.sequence_id)), str(row.phrase),
                           int(row.participant_id))

    return (from_store() if loader == "store" else from_raw()), len(index)


def _expand(run_dirs: Sequence[str | Path]) -> list[Path]:
    """Run folders; a folder holding run folders (``models/round2``) stands for them (those with a history)."""
    out = []
    for path in map(Path, run_dirs):
        if path.is_dir() and not (path / "history.csv").is_file() and not (path / "metrics.json").is_file():
            runs = sorted(p for p in path.iterdir() if (p / "history.csv").is_file() or (p / "metrics.json").is_file())
            out.extend(runs)
        else:
            out.append(path)
    return out


def training_curves(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """The ``history.csv`` of each training run, stacked with a ``run`` column (the run folder's name); a folder of
    run folders stands for all of them."""
    frames = []
    for run_dir in _expand(run_dirs):
        path = Path(run_dir) / "history.csv"
        if path.is_file():
            frames.append(pd.read_csv(path).assign(run=Path(run_dir).name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run"])


def _trained_folds(run_dirs: Sequence[str | Path]) -> list[int]:
    folds = []
    for run_dir in _expand(run_dirs):
        path = Path(run_dir) / "metrics.json"
        if path.is_file():
            try:
                fold = json.loads(path.read_text()).get("fold")
            except json.JSONDecodeError:
                fold = None
            if fold is not None:
                folds.append(int(fold))
    return folds


# ---------------------------------------------------------------------------------------------- the stage


def run_evaluation(model: str | Path, data: str | Path, metrics_path: str | Path, out_dir: str | Path, params=None,
                   folds_csv: str | Path | None = None, fold: int | None = 0, runs: Sequence[str | Path] = (),
                   track: bool = True, registry_path: str | Path | None = None, progress: bool | None = None,
                   model_name: str = "asl-fingerspelling") -> dict:
    """The ``evaluate`` stage: score the submission on held-out data, write the DVC metrics and plots, log to MLflow
    and update the registry's ``champion`` alias.

    Args:
        model: the submission folder (or a ``.tflite`` file / MLflow model URI).
        data: selected store or competition directory (see :func:`heldout_items`).
        metrics_path: DVC metrics JSON (``score``, ``cer``, ``score_dl``, ``score_pp``, ... flat numbers).
        out_dir: plot data and reports (``by_length.csv``, ``by_participant.csv``, ``confusions.csv``,
            ``predictions.csv``, ``training_curves.csv``).
        params: :class:`aslfs.config.EvaluateParams` (defaults when ``None``).
        folds_csv, fold: restrict to the non-supplemental sequences of one fold.
        runs: training run folders of the ensemble members (training curves; a member trained on ``fold`` makes
            the score optimistic, recorded as ``trained_on_heldout`` = 1).
        track: log to MLflow (a run of kind ``evaluate``) and promote in the registry.
        registry_path: where to write the registry outcome (``{name, version, alias, ...}``); ``None`` = not written.
        progress: progress bar (``None``: only on a terminal).
        model_name: the registered model (``export.model_name``: the name export registered the file under).

    Returns:
        ``{"metrics": {...}, "files": {name: path}, "registry": {...} or None}``.
    """
    from aslfs.config import EvaluateParams

    params = params or EvaluateParams()
    items, total = heldout_items(data, folds_csv, fold, params.max_sequences)
    summary, table = evaluate_tflite(model, items, total=total, threads=params.threads,
                                     length_edges=params.length_bins, top_confusions=params.top_confusions,
                                     progress=progress)
    trained_folds = _trained_folds(runs)
    extra = {}
    if fold is not None and folds_csv is not None and trained_folds:
        # a member validated on fold k never saw fold k; any other member (a full fit, fold -1, included) did
        extra["trained_on_heldout"] = int(any(f != int(fold) for f in trained_folds))
    files = write_outputs(summary, table, metrics_path, out_dir, extra)
    curves = training_curves(runs)
    curves_path = Path(out_dir) / "training_curves.csv"
    curves.to_csv(curves_path, index=False)
    files["training_curves"] = curves_path
    outcome = None
    if track:
        outcome = _track(model, summary, files, params, fold, model_name)
    if registry_path is not None:
        Path(registry_path).parent.mkdir(parents=True, exist_ok=True)
        Path(registry_path).write_text(json.dumps(outcome or {}, indent=2, sort_keys=True) + "\n")
        files["registry"] = Path(registry_path)
    return {"metrics": {**summary["metrics"], **extra}, "files": {k: str(v) for k, v in files.items()},
            "registry": outcome}


def _track(model, summary: dict, files: dict, params, fold, model_name: str) -> dict | None:
    """Log the evaluation to MLflow and move the ``champion`` alias when the score beats it."""
    from aslfs import registry, tracking

    tflite = registry.resolve_tflite(model)
    sha = registry.file_sha256(tflite)
    with tracking.start_run("evaluate", kind="evaluate", params={"evaluate": params.model_dump(), "fold": fold},
                            tags={registry.SHA_TAG: sha}) as tracker:
        tracker.log_metrics({k: v for k, v in summary["metrics"].items() if isinstance(v, (int, float))})
        for path in files.values():
            tracker.log_artifact(path, artifact_path="evaluate")
        if not params.promote:
            return None
        version = registry.find_version(sha, model_name)
        if version is None:
            folder = tflite.parent
            if not (folder / "inference_args.json").is_file():
                return None
            version = registry.register_submission(folder, name=model_name)
        promotion = registry.promote_if_better(version.version, summary["metrics"][params.champion_metric],
                                               name=model_name, score_key=params.champion_metric)
        tracker.set_tags({"aslfs.registered_version": version.version, "aslfs.champion": promotion.promoted})
    return {"name": promotion.name, "version": promotion.version,
            "alias": registry.CHAMPION if promotion.promoted else None, "score": promotion.score,
            "score_key": params.champion_metric, "champion_version": promotion.champion_version,
            "previous_version": promotion.previous_version, "previous_score": promotion.previous_score}


def format_report(result: dict) -> str:
    """A few lines for the terminal."""
    m = result["metrics"]
    lines = [f"{m['sequences']} held-out sequences: score {m['score']:.4f} (CER {m['cer']:.4f}, Damerau "
             f"{m['score_dl']:.4f}); after post-processing {m['score_pp']:.4f} "
             f"({100 * m['dummy_fraction']:.1f}% dummy); {1000 * m['seconds_per_sequence']:.0f} ms per sequence"]
    if m.get("trained_on_heldout"):
        lines.append("note: some ensemble members were trained on these sequences; the score is optimistic")
    reg = result.get("registry")
    if reg:
        state = "now champion" if reg.get("alias") else f"champion stays version {reg.get('champion_version')}"
        lines.append(f"registry: {reg['name']} version {reg['version']} ({reg['score_key']} {reg['score']:.4f}; {state})")
    lines.append(f"metrics: {result['files']['metrics']}")
    return "\n".join(lines)
