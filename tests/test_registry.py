"""Registry round trip on a temporary sqlite store: register the TFLite submission as a pyfunc, load it back through
``models:/asl-fingerspelling@champion`` and predict; the ``champion`` alias moves only when the score improves."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_a_version_explains_itself(store, probes):
    """Signature, input example and model card: what the registry page shows for a version (issue: "Inputs (0)")."""
    import mlflow
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    from aslfs import registry, tracking
    from aslfs.serving import card

    (store / "params.yaml").write_text("profile: demo\n")
    version = _register(probes[0])
    client = MlflowClient()
    info = Model.load(f"models:/asl-fingerspelling/{version.version}")
    inputs = info.signature.inputs.to_dict()
    assert inputs == [{"type": "tensor", "name": "frames", "tensor-spec": {"dtype": "float32", "shape": (-1, 390)}}]
    assert info.signature.outputs.to_dict() == [{"type": "string", "name": "phrase", "required": True}]
    folder = Path(mlflow.artifacts.download_artifacts("models:/asl-fingerspelling/1"))
    example = info.load_input_example(folder)["frames"]
    assert example.shape == (card.EXAMPLE_FRAMES, 390) and np.isnan(example).sum() == card.EXAMPLE_FRAMES * 63
    request = json.loads((folder / "serving_input_example.json").read_text())  # what the UI offers to send
    model = mlflow.pyfunc.load_model("models:/asl-fingerspelling/1")
    assert model.predict(request["inputs"]) == [probe_phrase(card.EXAMPLE_FRAMES)]

    text = client.get_model_version("asl-fingerspelling", "1").description
    sha = registry.file_sha256(probes[0] / "model.tflite")
    for line in ("# asl-fingerspelling version 1", f"sha256 `{sha[:16]}…`", "- **profile**: demo",
                 "## Held-out evaluation", "Not evaluated yet", "## TFLite contract", "float32 `[n_frames, 390]`",
                 'mlflow.pyfunc.load_model("models:/asl-fingerspelling/1")', "aslfs serve models:/asl-fingerspelling/1"):
        assert line in text, line
    assert "champion" in client.get_registered_model("asl-fingerspelling").description

    with tracking.start_run("evaluate", kind="evaluate") as run:
        run.log_metrics({"score": 0.8125, "cer": 0.1875})
        registry.promote_if_better("1", 0.8125, score_key="score")
    described = client.get_model_version("asl-fingerspelling", "1")
    assert described.tags[registry.EVAL_RUN_TAG] == run.run_id
    text = described.description
    assert "Not evaluated yet" not in text and text.count("## Held-out evaluation") == 1
    assert "- **score**: 0.8125" in text and f"runs/{run.run_id})" in text and "`cer` 0.1875" in text
    assert text.index("## Held-out evaluation") < text.index("## TFLite contract")  # replaced in place
    registry.promote_if_better("1", 0.9, score_key="score")  # scored again outside a run: the section is replaced
    text = client.get_model_version("asl-fingerspelling", "1").description
    assert text.count("## Held-out evaluation") == 1 and "- **score**: 0.9000" in text and "runs/" not in text
