"""Optional CTC-head ensemble decoding in the exported graph: TFLite strings equal the Keras reference (averaged
CTC log-probabilities, greedy CTC), rows are one-hot, the post-processing rule still applies."""

from __future__ import annotations

import numpy as np
import pytest

from aslfs.vocab import DUMMY_PHRASE


@pytest.fixture(scope="module")
def ctc_members():
    import keras

    from aslfs.models.config import get_config
    from aslfs.models.fingerspeller import FingerSpeller
    from export.tiny_models import randomize

    keras.utils.set_random_seed(1)
    config = get_config("tiny", ctc_head=True)
    members = [FingerSpeller(config, name=f"ctc_{i}") for i in range(2)]
    for i, m in enumerate(members):
        randomize(m, seed=30 + i, gain=2.0)
        m.confidence_head.bias.assign(np.array([20.0], np.float32))  # never below the threshold here
    return members


def test_ctc_graph_matches_keras(ctc_members, sequences, tmp_path):
    from aslfs.export.graph import EnsembleGraph
    from aslfs.export.keras_predict import keras_ensemble_predict
    from aslfs.export.runtime import TFLiteRecognizer
    from aslfs.export.tflite import write_submission

    with pytest.raises(ValueError, match="CTC head"):
        EnsembleGraph([type("M", (), {"decoder": ctc_members[0].decoder, "ctc_head": None})()], head="ctc")
    picks = sequences[::2]
    reference = keras_ensemble_predict(ctc_members, picks, head="ctc")
    assert len(set(reference["raw"])) > 3 and all(len(r) <= 32 for r in reference["raw"])
    result = write_submission(EnsembleGraph(ctc_members, head="ctc"), tmp_path / "sub", diagnostics=False)
    recognizer = TFLiteRecognizer(result.tflite_path)
    got = [recognizer.predict(f) for f in picks]
    assert got == reference["phrase"]
    rows = recognizer.logits(picks[3])
    assert set(np.unique(rows)) <= {0.0, 1.0} and (rows.sum(axis=1) == 1).all()
    assert recognizer.predict(picks[0][:10]) == DUMMY_PHRASE
