"""Shared fixtures of the export tests: a 2-member ``tiny`` ensemble with input-dependent random weights, ~20 raw
sequences (NaN hands, T from 1 to 1,000, many above the tiny preset's max_len of 64), its TFLite export and the Keras
reference predictions. The export runs once per session (about 20-40 s on 2 shared cores)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_frames, selected

#: raw frame counts of the parity set: below/at/above the rule (15), the tiny max_len (64) and the reference 384
LENGTHS = (15, 16, 20, 30, 33, 40, 63, 64, 65, 80, 100, 150, 200, 300, 383, 384, 385, 450, 600, 1000)


def randomize(model, seed: int, gain: float = 1.5, end_boost: float = 0.6) -> None:
    """Replace every weight by a random value large enough that the outputs depend on the input (the initial weights
    give the same phrase for every sequence). BatchNorm statistics stay valid; the decoder's fixed position table is
    kept; the end id's lm_head column is raised so that some phrases end before 32 characters."""
    from aslfs.vocab import END_ID

    rng = np.random.default_rng(seed)
    for w in model.weights:
        name, shape = w.path, tuple(w.shape)
        if "position_table" in name:
            continue
        if "moving_variance" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "moving_mean" in name:
            value = rng.normal(0.0, 0.1, shape)
        elif "gamma" in name:
            value = 1.0 + rng.normal(0.0, 0.1, shape)
        elif len(shape) >= 2:
            value = rng.normal(0.0, gain / np.sqrt(np.prod(shape[:-1])), shape)
            if "lm_head" in name:
                value[:, END_ID] += end_boost * value.std() * np.sqrt(shape[0])
        else:
            value = rng.normal(0.0, 0.1, shape)
        w.assign(value.astype("float32"))


def make_sequences(lengths=LENGTHS, seed: int = 7) -> list[np.ndarray]:
    """Raw (T, 390) float32 sequences in ``SELECTED_COLUMNS`` order, hands NaN in about 30% of the frames."""
    rng = np.random.default_rng(seed)
    return [selected(make_frames(rng, t)) for t in lengths]


@pytest.fixture(scope="session")
def sequences():
    return make_sequences()


@pytest.fixture(scope="session")
def members(sequences):
    """Two tiny members; the confidence bias is shifted so that about a third of ``sequences`` fall under 0.15."""
    import keras

    from aslfs.export.graph import keras_ensemble_predict
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
    from aslfs.export.graph import keras_ensemble_predict

    return keras_ensemble_predict(members, sequences)
