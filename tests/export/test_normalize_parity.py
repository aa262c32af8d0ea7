"""The graph's preprocessing (global normalisation + time resize) equals the normalize stage and the training resize,
both run eagerly (keras.ops) and in a converted TFLite file."""

from __future__ import annotations

import numpy as np
import pytest

from aslfs.data.normalize import normalize_np
from aslfs.data.sample import resize_time
from helpers import make_frames, selected


def _cases():
    rng = np.random.default_rng(3)
    cases = [selected(make_frames(rng, t)) for t in (1, 2, 15, 64, 65, 200, 384, 385, 1000)]
    constant = np.ones((30, 390), np.float32)
    cases.append(constant)  # σ = 0 on every axis → zeros
    cases.append(np.full((20, 390), np.nan, np.float32))  # all missing → zeros
    return cases


def _expected(frames, max_len, mode):
    x = normalize_np(frames)
    return resize_time(x, max_len, mode).astype(np.float32) if len(x) > max_len else x


class _Stub:
    """Just enough of a member for EnsembleGraph's preprocessing."""

    class decoder:
        vocab_size = 63


@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_eager_graph_preprocessing_equals_the_stage(mode):
    from aslfs.export.graph import EnsembleGraph

    graph = EnsembleGraph([_Stub()], max_len=384, resize_mode=mode)
    for frames in _cases():
        got = np.asarray(graph.normalize(frames))
        # float32 sums over up to 130k values in another order: differences up to ~1.5e-5 at T = 1000
        np.testing.assert_allclose(got, _expected(frames, 384, mode), atol=5e-5, rtol=0)


@pytest.fixture(scope="module")
def normalize_tflite(tmp_path_factory):
    from aslfs.export.graph import EnsembleGraph
    from aslfs.export.tflite import convert_endpoints

    graphs = {mode: EnsembleGraph([_Stub()], max_len=384, resize_mode=mode) for mode in ("linear", "nearest")}
    flatbuffer, _ = convert_endpoints({
        "serving_default": lambda inputs: {"outputs": graphs["linear"].normalize(inputs)},
        "nearest": lambda inputs: {"outputs": graphs["nearest"].normalize(inputs)},
    })
    path = tmp_path_factory.mktemp("normalize") / "normalize.tflite"
    path.write_bytes(flatbuffer)
    return path


@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_tflite_preprocessing_equals_the_stage(normalize_tflite, mode):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(normalize_tflite))
    runner = interpreter.get_signature_runner("serving_default" if mode == "linear" else "nearest")
    for frames in _cases():
        got = runner(inputs=frames)["outputs"]
        # TFLite kernels accumulate the per-axis sums less precisely (up to ~1.2e-4 at T = 1000)
        np.testing.assert_allclose(got, _expected(frames, 384, mode), atol=3e-4, rtol=0)
