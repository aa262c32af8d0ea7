"""The OOF table on fixed predictions: per-sequence DL scores, seed averaging, supplemental rows, errors."""

import json

import numpy as np
import pandas as pd
import pytest

from aslfs.config import OofParams
from aslfs.errors import DataError
from aslfs.training.oof import OOF_COLUMNS, build_oof_table, fold_scores
from tests.training.fixtures import make_store


def run_dir(root, name, fold, seed, preds, round=1):
    d = root / name
    d.mkdir()
    (d / "metrics.json").write_text(json.dumps({"round": round, "fold": fold, "seed": seed}))
    preds.to_csv(d / "val_predictions.csv", index=False)
    return d


def test_fold_scores_average_seeds():
    a = pd.DataFrame({"sequence_id": [1, 2], "phrase": ["abcd", "hello"], "prediction": ["abdc", "hello"]})
    b = pd.DataFrame({"sequence_id": [2, 1], "phrase": ["hello", "abcd"], "prediction": ["", "abcdxyz"]})
    got = fold_scores([a, b]).set_index("sequence_id")
    # seq 1: DL("abcd", "abdc") = 1 (a transposition) → 0.75; DL("abcd", "abcdxyz") = 3 → 0.25; mean 0.5
    # seq 2: 1.0 and (5 − 5) / 5 = 0 → 0.5
    assert got.loc[1, "score"] == pytest.approx(0.5) and got.loc[2, "score"] == pytest.approx(0.5)
    assert got["n_seeds"].tolist() == [2, 2]


def test_oof_table(tmp_path):
    phrases = ("abc", "hello", "a much longer supplemental phrase than 32 chars", "sup")
    store_dir, folds_csv = make_store(tmp_path, n=12, participants=4, supplemental=4, n_folds=2, phrases=phrases)
    folds = pd.read_csv(folds_csv)
    index = pd.read_parquet(store_dir / "index.parquet")
    main = folds[~folds.is_supplemental].merge(index[["sequence_id", "phrase"]], on="sequence_id")
    dirs = []
    rng = np.random.default_rng(0)
    for fold, seeds in ((0, (1, 2)), (1, (5,))):
        rows = main[main.fold == fold]
        for seed in seeds:
            preds = rows[["sequence_id", "phrase"]].copy()
            preds["prediction"] = [p if rng.random() < 0.5 else p[:-1] for p in preds.phrase]
            dirs.append(run_dir(tmp_path, f"f{fold}s{seed}", fold, seed, preds))
    table = build_oof_table(store_dir, folds_csv, dirs, OofParams())
    assert list(table.columns) == list(OOF_COLUMNS)
    ns = table[table.is_sup == 0]
    assert ns.sequence_id.tolist() == main.sequence_id.tolist()  # folds-table order
    assert ns.loc[ns.fold == 0, "n_seeds"].eq(2).all() and ns.loc[ns.fold == 1, "n_seeds"].eq(1).all()
    for _, r in ns.iterrows():  # a prediction is the phrase (score 1) or the phrase minus its last char (DL 1)
        runs = [d for d in dirs if json.loads((d / "metrics.json").read_text())["fold"] == r.fold]
        expected = []
        for d in runs:
            pred = pd.read_csv(d / "val_predictions.csv", keep_default_na=False).set_index("sequence_id")
            expected.append(1.0 if pred.loc[r.sequence_id, "prediction"] == r.phrase else 1 - 1 / len(r.phrase))
        assert r.score == pytest.approx(np.mean(expected))
    sup = table[table.is_sup == 1]
    assert (sup.score == 0.5).all() and (sup.phrase_len <= 32).all() and len(sup) == 3  # the long one is dropped
    assert (table.phrase_len == table.phrase.str.len()).all()


def test_oof_errors(tmp_path):
    store_dir, folds_csv = make_store(tmp_path, n=8, participants=4, n_folds=2)
    folds = pd.read_csv(folds_csv)
    index = pd.read_parquet(store_dir / "index.parquet")
    rows = folds[folds.fold == 0].merge(index[["sequence_id", "phrase"]], on="sequence_id")
    preds = rows[["sequence_id", "phrase"]].assign(prediction=rows.phrase)
    d0 = run_dir(tmp_path, "f0", 0, 1, preds)
    with pytest.raises(DataError, match=r"fold\(s\) \[1\]"):
        build_oof_table(store_dir, folds_csv, [d0])
    full = run_dir(tmp_path, "full", -1, 1, preds)
    with pytest.raises(DataError, match="full-fit"):
        build_oof_table(store_dir, folds_csv, [d0, full])
    r2 = run_dir(tmp_path, "r2", 1, 1, preds, round=2)
    with pytest.raises(DataError, match="round-2"):
        build_oof_table(store_dir, folds_csv, [d0, r2])
    short = run_dir(tmp_path, "short", 1, 1, preds)  # predictions of fold 0 rows, not fold 1
    with pytest.raises(DataError, match="miss"):
        build_oof_table(store_dir, folds_csv, [d0, short])
