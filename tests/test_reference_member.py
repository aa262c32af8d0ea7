"""An imported reference checkpoint (``aslfs import-checkpoint``) is a model like any trained one: the export stage
takes it as a member and registers the file, ``aslfs predict`` reads the registered version, and a training run
starts from its weights (fine-tuning, ``train.round1.init_weights``).

The checkpoint is the tiny real ``.pth`` of ``tests/fixtures`` (the reference's round-1 network at D=32, 2 blocks,
saved with DDP's ``module.`` prefixes), so torch's reading path runs too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
#: The fixture's size; max_len 64 matches the tiny training params (rotary tables are not weights).
SMALL = {"hidden_dim": 32, "num_layers": 2, "max_len": 64}
#: Largest logit difference between the fp16 TFLite file and the fp32 Keras model on a decoded step (seen: 2e-3).
TOLERANCE = 0.01


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    from aslfs.interop import reference_checkpoint as rc

    out = tmp_path_factory.mktemp("imported") / "reference_round1.keras"
    rc.import_checkpoint(FIXTURES / "reference_round1_small_ddp.pth", "kaggle-1st-round1", out, **SMALL)
    return out


def _weights(model) -> dict[str, np.ndarray]:
    return {w.path: np.asarray(w.value) for w in model.trainable_weights}


def test_exported_registered_and_predicted(imported, tmp_path, monkeypatch):
    import keras
    from mlflow.tracking import MlflowClient

    from aslfs.export.keras_predict import keras_ensemble_predict
    from aslfs.export.runtime import TFLiteRecognizer
    from aslfs.predict import predict
    from helpers import random_dataset, selected
    from stages.export import export

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ASLFS_ROOT", str(tmp_path))
    monkeypatch.delenv("ASLFS_PIPELINE_RUN", raising=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"export": {"register_model": True, "head": "attention"}}))
    export.call([tmp_path / "sub", imported, "--params", tmp_path / "params.yaml", "--report", tmp_path / "r.json",
                 "--no-diagnostics"])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["info"]["members"] == [str(imported)]
    assert report["info"]["registry"]["version"] == "1"
    assert b"Flex" not in (tmp_path / "sub" / "model.tflite").read_bytes()
    assert MlflowClient().get_model_version("asl-fingerspelling", "1").tags["aslfs.members"] == "1"

    meta, arrays = random_dataset(tmp_path / "data", n_sequences=6, sequences_per_file=3, frames=(20, 60), seed=5)
    predict("models:/asl-fingerspelling/1", tmp_path / "data", tmp_path / "pred.csv", progress=False)
    got = pd.read_csv(tmp_path / "pred.csv", dtype={"phrase": str}, keep_default_na=False)
    recognizer = TFLiteRecognizer(tmp_path / "sub" / "model.tflite")
    sequences = [selected(arrays[s]) for s in got["sequence_id"]]
    assert list(got["phrase"]) == [recognizer.predict(f) for f in sequences]
    # the file decodes what the imported Keras model decodes (sequence by sequence, at its own length), up to the
    # fp16 weights of the file: random weights give near ties, so the two may part only at a step whose two best
    # Keras logits are within twice the tolerance, and the logits agree up to and including that step
    member = keras.saving.load_model(imported, compile=False)
    expected = keras_ensemble_predict([member], sequences, max_len=64, pad=False)
    for frames, text, reference, rows in zip(sequences, got["phrase"], expected["phrase"], expected["logits"]):
        file_rows = recognizer.logits(frames)
        ours, theirs = file_rows.argmax(-1), rows.argmax(-1)
        parted = next((k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
        steps = min(len(file_rows), len(rows)) if parted is None else parted + 1
        np.testing.assert_allclose(file_rows[:steps], rows[:steps], atol=TOLERANCE)
        if parted is None:
            assert text == reference and len(file_rows) == len(rows)
        else:
            best, second = np.sort(rows[parted])[::-1][:2]
            assert best - second < 2 * TOLERANCE, (text, reference)
    assert sum(t == r for t, r in zip(got["phrase"], expected["phrase"])) >= len(sequences) // 2


def test_fine_tuning_starts_from_the_imported_weights(imported, tmp_path, capsys):
    import keras

    from aslfs.config import load_params
    from aslfs.models.fingerspeller import build_model
    from aslfs.training.trainer import train_model
    from tests.training.fixtures import make_store, tiny_round1_params

    store, folds = make_store(tmp_path)
    overrides = {"hidden_dim": 32, "num_layers": 2}
    raw = tiny_round1_params(1, round1={"preset": "kaggle-1st-round1", "model_overrides": {**overrides, "max_len": 64},
                                        "peak_lr": 1e-9, "init_weights": str(imported)}, workers=0, verbose=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    p = load_params(tmp_path / "params.yaml")
    train_model(1, 0, 3, store, folds, tmp_path / "run", train=p.train, augment=p.augment, sampling=p.sampling,
                track=False)
    assert f"train: {len(keras.saving.load_model(imported).weights)} weight tensors from {imported} (fine-tuning)" \
        in capsys.readouterr().out
    start = _weights(keras.saving.load_model(imported, compile=False))
    tuned = _weights(keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False))
    assert tuned.keys() == start.keys()
    # one epoch at a learning rate of 1e-9 leaves the imported weights where they were ...
    assert max(np.abs(tuned[k] - start[k]).max() for k in start) < 1e-6
    # ... which a random initialisation with the run's seed is far from
    fresh = _weights(build_model("kaggle-1st-round1", **overrides, max_len=64))
    assert max(np.abs(fresh[k] - start[k]).max() for k in start) > 0.1


def test_init_weights_of_another_architecture_is_one_line(imported, tmp_path):
    from aslfs.errors import DataError
    from aslfs.models.fingerspeller import build_model
    from aslfs.training.checkpoint import load_initial_weights

    wider = build_model("kaggle-1st-round1", hidden_dim=48, num_layers=2, max_len=64)
    before = _weights(wider)
    with pytest.raises(DataError, match=r"^train.round1.init_weights: .*reference_round1.keras: weight "
                                        r"'encoder/.*' has shape \(.*\), this round's model expects \(.*\)$"):
        load_initial_weights(wider, imported, "train.round1.init_weights")
    with_ctc = build_model("kaggle-1st-round1", hidden_dim=32, num_layers=2, max_len=64, ctc_head=True)
    with pytest.raises(DataError, match=r"another architecture \(lacks 2 weight\(s\) of this round's model, first "
                                        r"'ctc_head/kernel'\)"):
        load_initial_weights(with_ctc, imported, "train.round1.init_weights")
    with pytest.raises(DataError, match=r"^train.round1.init_weights: .*nope.keras: trained model not found$"):
        load_initial_weights(wider, tmp_path / "nope.keras", "train.round1.init_weights")
    after = _weights(wider)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # a refused file changes nothing
