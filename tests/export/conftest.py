"""Shared fixtures of the export tests: a 2-member ``tiny`` ensemble with input-dependent random weights, ~20 raw
sequences (NaN hands, T from 1 to 1,000, many above the tiny preset's max_len of 64), its TFLite export and the Keras
reference predictions. The export runs once per session (about 20-40 s on 2 shared cores)."""

from __future__ import annotations

import numpy as np
import pytest

from export.tiny_models import make_sequences, randomize  # noqa: F401


@pytest.fixture(scope="session")
def sequences():
    return make_sequences()


@pytest.fixture(scope="session")
def members(sequences):
    """Two tiny members; the confidence bias is shifted so that about a third of ``sequences`` fall under 0.15."""
    import keras

    from aslfs.export.keras_predict import keras_ensemble_predict
    from aslfs.models.config import get_config
    from aslfs.models.fingerspeller import FingerSpeller

    keras.utils.set_random_seed(0)
    out = [FingerSpeller(get_config("tiny"), name=f"member_{i}") for i in range(2)]
    for i, m in enumerate(out):
        randomize(m, seed=10 + i)
    conf = np.array(keras_ensemble_predict(out, sequences)["confidence"], np.float64)
    logits = np.log(conf / (1.0 - conf))
    shift = np.log(0.15 / 0.85) - np.quantile(logits, 0.35)
    for m in out:
        bias = m.confidence_head.bias
        bias.assign(bias.numpy() + np.float32(shift))
    return out


@pytest.fixture(scope="session")
def graph(members):
    from aslfs.export.graph import EnsembleGraph

    return EnsembleGraph(members)


@pytest.fixture(scope="session")
def exported(graph, tmp_path_factory):
    from aslfs.export.tflite import write_submission

    return write_submission(graph, tmp_path_factory.mktemp("submission"))


@pytest.fixture(scope="session")
def recognizer(exported):
    from aslfs.export.runtime import TFLiteRecognizer

    return TFLiteRecognizer(exported.tflite_path, threads=2)


@pytest.fixture(scope="session")
def keras_reference(members, sequences):
    from aslfs.export.keras_predict import keras_ensemble_predict

    return keras_ensemble_predict(members, sequences)
