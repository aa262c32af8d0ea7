"""Registry round trip on a temporary sqlite store: register the TFLite submission as a pyfunc, load it back through
``models:/asl-fingerspelling@champion`` and predict; the ``champion`` alias moves only when the score improves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from export.toy_tflite import probe_phrase, write_probe_submission


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ASLFS_ROOT", str(tmp_path))
    monkeypatch.delenv("ASLFS_PIPELINE_RUN", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    return [write_probe_submission(root / f"sub{k}", offset=k) for k in range(3)]


def _register(folder):
    from aslfs import registry, tracking

    with tracking.start_run("export", kind="export"):
        return registry.register_submission(folder)


def test_register_load_predict_and_champion(store, probes):
    import mlflow
    from mlflow.tracking import MlflowClient

    from aslfs import registry

    v1 = _register(probes[0])
    assert (v1.name, v1.version) == ("asl-fingerspelling", "1")
    first = registry.promote_if_better(v1.version, 0.50)
    assert first.promoted and first.previous_version is None

    champion = mlflow.pyfunc.load_model("models:/asl-fingerspelling@champion")
    frames = np.random.default_rng(0).random((123, 390), dtype=np.float32)
    assert champion.predict(frames) == [probe_phrase(123)]
    table = pd.DataFrame(np.concatenate([frames[:20], frames[:45]]), columns=_columns())
    table.insert(0, "sequence_id", [7] * 20 + [9] * 45)
    assert champion.predict(table) == [probe_phrase(20), probe_phrase(45)]
    assert champion.predict([frames[:5], frames[:100]]) == [probe_phrase(5), probe_phrase(100)]

    v2 = _register(probes[1])
    worse = registry.promote_if_better(v2.version, 0.40)
    assert not worse.promoted and worse.champion_version == "1" and worse.previous_score == 0.50
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("asl-fingerspelling", "champion").version) == "1"

    v3 = _register(probes[2])
    better = registry.promote_if_better(v3.version, 0.60)
    assert better.promoted and better.previous_version == "1"
    assert str(client.get_model_version_by_alias("asl-fingerspelling", "champion").version) == "3"
    assert client.get_model_version("asl-fingerspelling", "3").tags[registry.SCORE_TAG] == "0.6"
    equal = registry.promote_if_better(v2.version, 0.60)  # a tie does not move the alias
    assert not equal.promoted

    # the same file again: no new version
    assert _register(probes[0]).version == "1"
    assert registry.find_version(registry.file_sha256(probes[2] / "model.tflite")).version == "3"
    local = registry.resolve_tflite("models:/asl-fingerspelling@champion", dst=store / "download")
    assert local.read_bytes() == (probes[2] / "model.tflite").read_bytes()


def test_predict_and_evaluate_accept_a_model_uri(store, probes, tmp_path):
    from aslfs import registry
    from aslfs.evaluate.stage import run_evaluation
    from aslfs.predict import predict
    from helpers import random_dataset

    v1 = _register(probes[0])
    registry.promote_if_better(v1.version, 0.1)
    meta, arrays = random_dataset(tmp_path / "data", n_sequences=6, sequences_per_file=3)
    result = predict("models:/asl-fingerspelling@champion", tmp_path / "data", tmp_path / "out.csv")
    got = pd.read_csv(tmp_path / "out.csv", dtype={"phrase": str})
    assert result.sequences == 6
    assert list(got["phrase"]) == [probe_phrase(len(arrays[s])) for s in got["sequence_id"]]

    # evaluate a newer export: it beats the 0.1 champion only if its score is higher
    out = run_evaluation(probes[1], tmp_path / "data", tmp_path / "m.json", tmp_path / "ev", track=True,
                         registry_path=tmp_path / "registry.json")
    reg = json.loads((tmp_path / "registry.json").read_text())
    assert reg["version"] == "2" and reg["score_key"] == "score_pp"
    assert reg["alias"] == ("champion" if out["metrics"]["score_pp"] > 0.1 else None)


def _columns():
    from aslfs.landmarks import SELECTED_COLUMNS

    return list(SELECTED_COLUMNS)
