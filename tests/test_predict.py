"""``aslfs predict`` on generated competition data: every listed sequence reaches the model with its own frames,
the csv has the documented columns, labels give per-sequence and corpus scores; a parquet file works without labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from export.toy_tflite import probe_phrase, write_probe_submission
from helpers import random_dataset


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    return write_probe_submission(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    meta, arrays = random_dataset(root, n_sequences=14, sequences_per_file=4, frames=(5, 140), seed=3)
    return root, meta, arrays


def test_predict_competition_directory(probe, dataset, tmp_path):
    from aslfs.metrics import competition_score
    from aslfs.predict import predict

    root, meta, arrays = dataset
    result = predict(probe, root, tmp_path / "out" / "pred.csv", progress=False)
    got = pd.read_csv(tmp_path / "out" / "pred.csv", dtype={"phrase": str, "label": str})
    assert list(got.columns) == ["sequence_id", "phrase", "label", "score"]
    assert sorted(got["sequence_id"]) == sorted(meta["sequence_id"])  # train and supplemental rows
    expected = [probe_phrase(len(arrays[s])) for s in got["sequence_id"]]
    assert list(got["phrase"]) == expected
    labels = dict(zip(meta["sequence_id"], meta["phrase"]))
    assert list(got["label"]) == [labels[s] for s in got["sequence_id"]]
    assert result.sequences == len(meta)
    assert result.score == pytest.approx(competition_score(list(got["label"]), expected))
    lev = [len(r) - s * len(r) for r, s in zip(got["label"], got["score"])]
    assert all(d >= 0 for d in lev)  # score = (N - Lev)/N, so N(1 - score) is the distance


def test_predict_one_parquet_file_without_labels(probe, dataset, tmp_path):
    from aslfs.predict import predict

    root, meta, arrays = dataset
    path = root / meta["path"].iloc[0]
    predict(probe / "model.tflite", path, tmp_path / "one.csv", progress=False)
    got = pd.read_csv(tmp_path / "one.csv", dtype={"phrase": str})
    assert list(got.columns) == ["sequence_id", "phrase"]
    in_file = meta[meta["path"] == meta["path"].iloc[0]]["sequence_id"].tolist()
    assert got["sequence_id"].tolist() == in_file
    assert got["phrase"].tolist() == [probe_phrase(len(arrays[s])) for s in in_file]


def test_predict_matches_the_recognizer_and_the_cli(probe, dataset, tmp_path, capsys):
    from stages.cli import main
    from aslfs.export.runtime import TFLiteRecognizer
    from aslfs.landmarks import SELECTED_IN_ALL

    root, meta, arrays = dataset
    assert main(["predict", str(probe), str(root), "--out", str(tmp_path / "cli.csv")]) == 0
    assert "competition score" in capsys.readouterr().out
    got = pd.read_csv(tmp_path / "cli.csv", dtype={"phrase": str})
    recognizer = TFLiteRecognizer(probe / "model.tflite")
    for sid, phrase in zip(got["sequence_id"], got["phrase"]):
        frames = np.ascontiguousarray(arrays[sid][:, SELECTED_IN_ALL])
        assert recognizer.predict(frames) == phrase


def test_predict_reports_missing_input(probe, tmp_path):
    from stages.cli import main

    assert main(["predict", str(probe), str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.csv")]) == 2
    assert main(["predict", str(tmp_path / "no-model"), str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2
