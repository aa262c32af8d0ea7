"""The OOF table (docs/reference.md §1.8): round-1 out-of-fold predictions → per-sequence ``score`` for round 2.

For every round-1 fold model (any number of seeds per fold), its validation predictions (the raw greedy decode of
its own validation fold, no dummy-phrase rule) give a per-sequence score ``(len(gt) − DL(gt, pred)) / len(gt)``
(unrestricted Damerau-Levenshtein, may be negative); scores are averaged over the seeds available for the fold.
The table then holds every non-supplemental row of the folds table (folds-table order) with its score, followed by
the supplemental rows whose phrase has at most ``sampling.max_supplemental_phrase_len`` (32) characters, with score
``sampling.supplemental_score`` (0.5), the values round 2 trains with. Round 2 clips the scores to [0, 1] when it reads them.

Columns: ``sequence_id, participant_id, fold, phrase, phrase_len, is_sup, score, n_seeds``.

The predictions come from each model directory's ``val_predictions.csv`` (written by :func:`train_model` at its
last evaluation with the final weights, like the reference's ``val_data_seed*.pth`` dumps), or, with
``source="model"``, are decoded again from its ``model.keras``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aslfs.errors import DataError
from aslfs.metrics import sequence_scores_dl
from aslfs.runs import VAL_PREDICTIONS_FILE, as_run

OOF_COLUMNS = ("sequence_id", "participant_id", "fold", "phrase", "phrase_len", "is_sup", "score", "n_seeds")


def read_run(run) -> dict:
    """The run facts (round, fold, seed) of a training output (a :class:`~aslfs.runs.Run` or its folder)."""
    run = as_run(run)
    facts = run.metrics(required=True)
    for key in ("round", "fold", "seed"):
        if key not in facts:
            raise DataError(f"{run.metrics_file}: lacks '{key}'")
    return facts


def read_predictions(run) -> pd.DataFrame:
    """The run's last validation predictions (``val_predictions.csv``)."""
    run = as_run(run)
    path = run.val_predictions_file
    if path is None or not path.is_file():
        raise DataError(f"{run.path}: no {VAL_PREDICTIONS_FILE} (train it to the end first)")
    preds = pd.read_csv(path, keep_default_na=False, dtype={"phrase": str, "prediction": str})
    for col in ("sequence_id", "phrase", "prediction"):
        if col not in preds.columns:
            raise DataError(f"{path}: lacks column '{col}'")
    return preds


def predict_from_model(run, data_dir, folds_csv, fold: int, batch_size: int = 64,
                       empty_without_end: bool = False, max_len: int | None = None,
                       resize_mode: str = "linear") -> pd.DataFrame:
    """Decode the validation fold again with the run's model (same columns as ``val_predictions.csv``)."""
    from aslfs.data.store import SequenceStore
    from aslfs.training.evaluation import Validator
    from aslfs.training.loader import SequenceBatches
    from aslfs.training.losses import LossConfig
    from aslfs.training.tables import build_tables, read_folds

    net = as_run(run).load_model()
    store = SequenceStore(data_dir)
    _, val = build_tables(store.index, read_folds(folds_csv), 1, fold, 0)
    batches = SequenceBatches(store, val, batch_size, training=False, round=1,
                              max_len=max_len or net.model_config.max_len, resize_mode=resize_mode, workers=0)
    preds, _ = Validator(net, batches, val, LossConfig(), 1, empty_without_end=empty_without_end).predict()
    return preds


def fold_scores(per_seed: list[pd.DataFrame]) -> pd.DataFrame:
    """Average the per-sequence DL scores of several seeds' predictions of one fold.

    Args:
        per_seed: prediction tables (``sequence_id, phrase, prediction``) of the same validation rows.

    Returns:
        ``sequence_id, score, n_seeds``.
    """
    parts = []
    for preds in per_seed:
        s = sequence_scores_dl(preds["phrase"].astype(str).tolist(), preds["prediction"].astype(str).tolist())
        parts.append(pd.DataFrame({"sequence_id": preds["sequence_id"].to_numpy(), "score": s}))
    both = pd.concat(parts, ignore_index=True)
    out = both.groupby("sequence_id", sort=False)["score"].agg(["mean", "size"]).reset_index()
    return out.rename(columns={"mean": "score", "size": "n_seeds"})


def build_oof_table(data_dir, folds_csv, model_dirs, params=None, sampling=None) -> pd.DataFrame:
    """The OOF table for the round-1 runs in ``model_dirs`` (module docstring).

    Args:
        data_dir: the normalised store (phrases of every row).
        folds_csv: the folds table.
        model_dirs: round-1 training output directories (fold ≥ 0; any number of seeds per fold).
        params: :class:`aslfs.config.OofParams`.
        sampling: :class:`aslfs.config.SamplingParams` (the supplemental rows' phrase-length cutoff and score).

    Raises:
        DataError: a directory is not a round-1 fold run, or a fold has no run, or a run's predictions do not
            cover its validation fold.
    """
    from aslfs.config import OofParams, SamplingParams
    from aslfs.data.store import SequenceStore
    from aslfs.training.tables import read_folds

    params = params or OofParams()
    sampling = sampling or SamplingParams()
    store = SequenceStore(data_dir)
    folds = read_folds(folds_csv)
    index = store.index[["sequence_id", "participant_id", "phrase", "is_supplemental"]]
    table = folds[["sequence_id", "fold"]].merge(index, on="sequence_id", how="inner")
    table["is_sup"] = table["is_supplemental"].astype(bool)
    main = table[~table["is_sup"]].copy()

    by_fold: dict[int, list[pd.DataFrame]] = {}
    for d in map(as_run, model_dirs):
        facts = read_run(d)
        if int(facts["round"]) != 1:
            raise DataError(f"{d.path}: a round-{facts['round']} run; the OOF table needs round-1 runs")
        fold = int(facts["fold"])
        if fold < 0:
            raise DataError(f"{d.path}: a full-fit run (fold -1) has no out-of-fold predictions")
        if params.source == "model":
            preds = predict_from_model(d, data_dir, folds_csv, fold, params.batch_size, params.empty_without_end)
        else:
            preds = read_predictions(d)
        want = set(main.loc[main["fold"] == fold, "sequence_id"].tolist())
        have = set(preds["sequence_id"].tolist())
        if want - have:
            raise DataError(f"{d.path}: its predictions miss {len(want - have)} of the {len(want)} sequences of fold "
                            f"{fold} (first: {sorted(want - have)[0]}); was it trained on these folds?")
        by_fold.setdefault(fold, []).append(preds[preds["sequence_id"].isin(want)])
    missing = sorted(set(main["fold"].unique().tolist()) - set(by_fold))
    if missing and params.missing_fold_score is None:
        raise DataError(f"OOF: no round-1 run for fold(s) {missing} (set oof.missing_fold_score to score them)")
    if not by_fold:
        raise DataError("OOF: no round-1 runs given")

    scores = pd.concat([fold_scores(runs) for runs in by_fold.values()], ignore_index=True)
    main = main.merge(scores, on="sequence_id", how="left")
    if missing:  # folds nobody predicted (e.g. the fold round 2 holds out): a constant score, no seeds
        lost = main["fold"].isin(missing)
        main.loc[lost, "score"] = float(params.missing_fold_score)
        main.loc[lost, "n_seeds"] = 0
    main["is_sup"] = 0
    sup = table[table["is_sup"]].copy()
    sup = sup[sup["phrase"].astype(str).str.len() <= sampling.max_supplemental_phrase_len]
    sup["score"] = float(sampling.supplemental_score)
    sup["n_seeds"] = 0
    sup["is_sup"] = 1
    out = pd.concat([main, sup], ignore_index=True)
    out["phrase_len"] = out["phrase"].astype(str).str.len()
    out["n_seeds"] = out["n_seeds"].astype(np.int64)
    return out[list(OOF_COLUMNS)]


def write_oof_table(data_dir, folds_csv, model_dirs, out_csv, params=None, track: bool = True,
                    sampling=None) -> pd.DataFrame:
    """:func:`build_oof_table` → ``out_csv`` (atomically); logs an MLflow run (kind ``oof``) when ``track``."""
    from aslfs.atomic import write_csv

    table = build_oof_table(data_dir, folds_csv, model_dirs, params, sampling)
    write_csv(out_csv, table)
    main = table[table["is_sup"] == 0]
    summary = {"oof_score_mean": float(main["score"].mean()), "rows": len(table),
               "supplemental_rows": int((table["is_sup"] == 1).sum()),
               "mean_seeds": float(main["n_seeds"].mean())}
    for fold, part in main.groupby("fold"):
        summary[f"fold{int(fold)}_score_mean"] = float(part["score"].mean())
    print("OOF: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()),
          flush=True)
    if track:
        from aslfs import tracking

        with tracking.start_run("oof", "oof", params={"model_dirs": [str(as_run(d).path) for d in model_dirs],
                                                      "oof": (params.model_dump() if params else {})}) as tracker:
            tracker.log_metrics(summary)
            tracker.log_artifact(out_csv)
    return table
