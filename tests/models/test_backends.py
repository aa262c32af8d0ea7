"""One forward + one training step on TensorFlow (XLA) and on JAX; TF-saved weights loaded on JAX.

The JAX checks run in a subprocess with ``KERAS_BACKEND=jax`` (the backend is fixed per process) and are skipped
when ``jax`` is not installed (``pip install -e '.[jax]'``).
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
from keras import ops

from aslfs.models.fingerspeller import build_model

SMALL = dict(num_layers=1, ctc_head=True)


def _batch(seed=0, batch=2, frames=12):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, frames), bool)
    mask[1, frames // 2:] = False
    x = {"landmarks": rng.normal(size=(batch, frames, 130, 3)).astype("float32"), "padding_mask": mask,
         "decoder_input_ids": rng.integers(0, 63, (batch, 33)).astype("int32"),
         "backward_decoder_input_ids": rng.integers(0, 63, (batch, 6)).astype("int32")}
    y = {"logits": rng.integers(0, 63, (batch, 33)).astype("int32")}
    return x, y


def _train_one_step(model, x, y):
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}, jit_compile=True)
    before = {w.path: w.numpy().copy() for w in model.weights}
    with warnings.catch_warnings():  # only the forward logits carry a loss here: the other heads get no gradient
        warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
        loss = float(model.train_on_batch(x, y))
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    return loss, changed


def test_tensorflow_forward_and_xla_training_step():
    assert keras.backend.backend() == "tensorflow"
    model = build_model("tiny", **SMALL)
    x, y = _batch()
    out = model(x)
    assert out["logits"].shape == (2, 33, 63) and out["ctc_logits"].shape == (2, 12, 64)
    loss, changed = _train_one_step(model, x, y)
    assert np.isfinite(loss) and 3.0 < loss < 6.0  # about ln(63) = 4.14 at initialisation
    assert "encoder/feature_extractor/projection/kernel" in changed
    assert "encoder/block_0/convolution/norm/moving_mean" in changed  # masked BN statistics updated under XLA
    assert "decoder/lm_head/kernel" in changed


_JAX_SCRIPT = textwrap.dedent("""
    import json, sys
    import keras, numpy as np
    from keras import ops
    from aslfs.models.fingerspeller import build_model
    assert keras.backend.backend() == "jax"
    data = np.load(sys.argv[1])
    x = {k: data[k] for k in ("landmarks", "padding_mask", "decoder_input_ids", "backward_decoder_input_ids")}
    loaded = keras.saving.load_model(sys.argv[2])
    out = loaded(x)
    diffs = {k: float(np.abs(ops.convert_to_numpy(v) - data["out_" + k]).max()) for k, v in out.items()}
    model = build_model("tiny", **json.loads(sys.argv[3]))
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}, jit_compile=True)
    before = {w.path: w.numpy().copy() for w in model.weights}
    loss = float(model.train_on_batch(x, {"logits": data["targets"]}))
    changed = sorted(w.path for w in model.weights if not np.array_equal(before[w.path], w.numpy()))
    # the hand-written attention backward (aslfs.layers.attention_ops) against JAX autodiff
    import jax
    import jax.numpy as jnp
    from aslfs.layers.attention_ops import softmax_attention
    rng = np.random.default_rng(0)
    s, v, w = (rng.normal(size=shape).astype("float32") for shape in ((2, 3, 5, 5), (2, 5, 3, 4), (2, 5, 3, 4)))
    bias = np.zeros((2, 1, 1, 5), "float32")
    bias[0, ..., 3:] = np.finfo(np.float32).min
    plain = lambda s, v: jnp.sum(jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(s + bias, axis=-1), v) * w)
    custom = lambda s, v: jnp.sum(softmax_attention(s, v, bias) * w)
    grads = [jax.grad(f, argnums=(0, 1))(s, v) for f in (plain, custom)]
    grad_diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(*grads))
    print("RESULT " + json.dumps({"diffs": diffs, "loss": loss, "changed": changed, "grad_diff": grad_diff}))
""")


@pytest.mark.jax
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[jax]')")
def test_jax_loads_tensorflow_weights_and_trains(tmp_path):
    model = build_model("tiny", **SMALL)
    rng = np.random.default_rng(5)
    for w in model.trainable_weights:  # non-trivial weights everywhere (biases too)
        w.assign(w.numpy() + 0.05 * rng.normal(size=w.shape).astype("float32"))
    x, y = _batch(seed=1)
    out = model(x)
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "data.npz", targets=y["logits"], **x,
             **{f"out_{k}": ops.convert_to_numpy(v) for k, v in out.items()})
    # the cheapest XLA compilation: a test of values, not of speed (halves the test's time)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}
    proc = subprocess.run([sys.executable, "-c", _JAX_SCRIPT, str(tmp_path / "data.npz"),
                           str(tmp_path / "model.keras"), json.dumps(SMALL)],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert set(result["diffs"]) == set(out)
    assert max(result["diffs"].values()) < 1e-4, result["diffs"]
    assert np.isfinite(result["loss"]) and 3.0 < result["loss"] < 6.0
    assert "encoder/block_0/convolution/norm/moving_mean" in result["changed"]
    assert "encoder/feature_extractor/projection/kernel" in result["changed"]
    assert result["grad_diff"] < 1e-5
