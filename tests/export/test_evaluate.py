"""Evaluation library: golden metrics, breakdowns and confusions on hand-made predictions, and the evaluate run on
generated data (competition directory and selected store, fold filter, files written)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from export.toy_tflite import probe_phrase, write_probe_submission
from helpers import random_dataset


def _table(rows):
    from aslfs.evaluate.scoring import PREDICTION_COLUMNS

    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))


def test_summarize_golden_numbers():
    from aslfs.evaluate.scoring import summarize

    table = _table([
        (1, 7, 20, "abcd", "abcd", "abcd", 0.9, False),  # perfect
        (2, 7, 60, "abcd", "abce", "abce", 0.8, False),  # one substitution d → e
        (3, 8, 400, "xyz", "xy", "2 a-e -aroe", 0.1, True),  # one deletion; replaced by the dummy
        (4, 8, 30, "ab", "ba", "ba", 0.7, False),  # transposition: Levenshtein 2, Damerau 1
    ])
    s = summarize(table, edges=(0, 50, 384), top_confusions=10)
    m = s["metrics"]
    assert m["score"] == pytest.approx((13 - 4) / 13)
    assert m["score_dl"] == pytest.approx((13 - 3) / 13)
    assert m["cer"] == pytest.approx((0 + 1 / 4 + 1 / 3 + 1) / 4)
    assert m["score_pp"] == pytest.approx((13 - 0 - 1 - 11 - 2) / 13)  # Lev("xyz", dummy) = 3 subs + 8 inserts
    assert m["dummy_fraction"] == pytest.approx(1 / 4) and m["sequences"] == 4 and m["characters"] == 13
    by_length = s["by_length"].set_index("length")
    assert list(by_length.index) == ["0-49", "50-383", "384+"]
    assert by_length.loc["0-49", "score"] == pytest.approx(4 / 6)
    assert by_length.loc["50-383", "score"] == pytest.approx(3 / 4)
    assert by_length.loc["384+", "score_pp"] == pytest.approx(-8 / 3)
    by_participant = s["by_participant"].set_index("participant_id")
    assert by_participant.loc[7, "score"] == pytest.approx(7 / 8)
    assert by_participant.loc[8, "score"] == pytest.approx(2 / 5)
    pairs = {(c["ref"], c["pred"]): c["count"] for c in s["confusions"]}
    assert pairs[("d", "e")] == 1 and pairs[("z", "")] == 1
    assert sum(pairs.values()) == 4  # total Levenshtein distance


def test_length_bins_edges():
    from aslfs.evaluate.scoring import length_bins

    assert list(length_bins([0, 49, 50, 383, 384, 1000], [0, 50, 384])) == ["0-49", "0-49", "50-383", "50-383",
                                                                             "384+", "384+"]


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    return write_probe_submission(tmp_path_factory.mktemp("probe"))


def test_run_evaluation_on_a_store_with_folds(probe, tmp_path):
    from aslfs.config import EvaluateParams, SelectParams
    from aslfs.data.select import select
    from aslfs.evaluate.stage import run_evaluation

    meta, arrays = random_dataset(tmp_path / "raw", n_sequences=16, sequences_per_file=8, frames=(10, 60), seed=5)
    select(tmp_path / "raw", tmp_path / "selected", SelectParams())
    folds = meta[["sequence_id", "participant_id", "is_supplemental"]].assign(fold=lambda d: d.participant_id % 2)
    folds.to_csv(tmp_path / "folds.csv", index=False)
    run0 = tmp_path / "models" / "run0"  # a run folder as training writes it (the model itself is not read here)
    run0.mkdir(parents=True)
    (run0 / "model.keras").write_bytes(b"")
    pd.DataFrame({"epoch": [1, 2], "loss": [3.0, 2.0]}).to_csv(run0 / "history.csv", index=False)
    (run0 / "metrics.json").write_text(json.dumps({"fold": 1}))
    imported = tmp_path / "imported.keras"  # a standalone member (aslfs import-checkpoint): no history, no fold
    imported.write_bytes(b"")

    result = run_evaluation(probe, tmp_path / "selected", tmp_path / "metrics" / "evaluate.json", tmp_path / "ev",
                            params=EvaluateParams(top_confusions=3), folds_csv=tmp_path / "folds.csv", fold=1,
                            runs=[tmp_path / "models", imported], track=False)
    written = json.loads((tmp_path / "metrics" / "evaluate.json").read_text())
    assert {"score", "cer", "score_pp", "score_dl", "dummy_fraction", "seconds_per_sequence"} <= set(written)
    assert written["trained_on_heldout"] == 0  # the member validated on fold 1
    expected = meta[(meta.participant_id % 2 == 1) & ~meta.is_supplemental]
    predictions = pd.read_csv(tmp_path / "ev" / "predictions.csv", dtype={"raw": str, "phrase": str})
    assert sorted(predictions["sequence_id"]) == sorted(expected["sequence_id"])
    assert list(predictions["raw"]) == [probe_phrase(len(arrays[s])) for s in predictions["sequence_id"]]
    assert written["sequences"] == len(expected)
    for name in ("by_length", "by_participant", "confusions", "training_curves"):
        assert (tmp_path / "ev" / f"{name}.csv").is_file()
    assert len(pd.read_csv(tmp_path / "ev" / "confusions.csv")) <= 3
    assert pd.read_csv(tmp_path / "ev" / "training_curves.csv")["run"].tolist() == ["run0", "run0"]
    assert result["registry"] is None


def test_run_evaluation_refuses_a_folder_without_runs_before_scoring(tmp_path):
    from aslfs.errors import DataError
    from aslfs.evaluate.stage import run_evaluation

    empty = tmp_path / "models"
    empty.mkdir()
    with pytest.raises(DataError) as info:  # model and data do not exist: the runs are checked first
        run_evaluation(tmp_path / "sub", tmp_path / "data", tmp_path / "m.json", tmp_path / "ev", runs=[empty],
                       track=False)
    assert str(info.value) == f"{empty}: no training run here (no model.keras in it or in its sub-folders)"
    assert not (tmp_path / "m.json").exists()


def test_evaluate_cli_on_a_competition_directory(probe, tmp_path, capsys, monkeypatch):
    from stages.cli import main

    random_dataset(tmp_path / "raw", n_sequences=6, sequences_per_file=3, frames=(10, 40), seed=6)
    (tmp_path / "params.yaml").write_text("")  # an empty parameter file: every section takes its defaults
    monkeypatch.chdir(tmp_path)  # the outputs go to dvc.yaml's paths under the working directory
    code = main(["evaluate", str(probe), str(tmp_path / "raw"), "--no-track"])
    assert code == 0
    assert "held-out sequences" in capsys.readouterr().out
    assert json.loads((tmp_path / "artifacts/metrics/evaluate.json").read_text())["sequences"] == 6
    assert (tmp_path / "artifacts/evaluate/by_length.csv").is_file()


def test_evaluate_stage_writes_metrics_plots_and_registry(probe, tmp_path, monkeypatch):
    from aslfs.config import SelectParams
    from aslfs.data.select import select
    from stages.evaluate import evaluate

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ASLFS_ROOT", str(tmp_path))
    monkeypatch.delenv("ASLFS_PIPELINE_RUN", raising=False)
    meta, _ = random_dataset(tmp_path / "raw", n_sequences=8, sequences_per_file=4, frames=(10, 40), seed=8)
    select(tmp_path / "raw", tmp_path / "selected", SelectParams())
    meta.assign(fold=meta.participant_id % 2)[["sequence_id", "participant_id", "fold", "is_supplemental"]].to_csv(
        tmp_path / "folds.csv", index=False)
    (tmp_path / "params.yaml").write_text("")
    evaluate.call([probe, tmp_path / "selected", tmp_path / "folds.csv", 0, tmp_path / "evaluate.json",
                   tmp_path / "plots", "--registry", tmp_path / "registry.json", "--params", tmp_path / "params.yaml"],
                  flow=True)
    metrics = json.loads((tmp_path / "evaluate.json").read_text())
    assert {"score", "cer", "score_pp"} <= set(metrics)
    registry = json.loads((tmp_path / "registry.json").read_text())
    assert registry["name"] == "asl-fingerspelling" and registry["version"] == "1" and registry["alias"] == "champion"
    assert (tmp_path / "plots" / "by_length.csv").is_file()
