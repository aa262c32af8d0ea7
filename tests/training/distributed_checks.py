"""Run in a subprocess by ``test_distribution.py``, once per backend, on two virtual CPU devices (the device count
is fixed when the backend initialises, so this sets it first: ``XLA_FLAGS`` for JAX, two logical CPU devices for
TensorFlow). Prints one line ``RESULT {json}``.

1. **One optimizer step** (two accumulated micro-batches, global-norm clipping and weight decay active) of a
   minimal round-2 model (every loss term: forward and backward CE, confidence BCE, CTC; one encoder block, one
   decoder layer, a global feature extractor only) through ``fit``, on one device and on two with the same global
   batch: the losses and the largest weight difference relative to the weight's scale. The batches go through
   ``fit`` as Keras' trainer does in training: TensorFlow's ``train_on_batch`` gives every replica the *whole*
   batch (it does not split it), which is not data parallelism.
2. With ``--train``: a full ``train_model`` (one epoch with validation, tiny store of
   ``tests/training/fixtures.py``) with ``distribution: data_parallel, devices: 2``.

Usage: ``KERAS_BACKEND=jax|tensorflow python tests/training/distributed_checks.py [--train]``.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

START = time.perf_counter()

# two host devices; the cheapest XLA compilation (a test of sums and shardings, not of speed: halves the time)
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2" \
    " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() == "jax":
    sys.modules.setdefault("tensorflow", None)  # unused on JAX; keras.utils.set_random_seed would import it (seconds)
else:
    import tensorflow as tf  # test-only: two logical CPU devices before TensorFlow initialises

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from aslfs.training import distribution  # noqa: E402

#: the smallest model with the round-2 structure (backward decoder, confidence and CTC heads), without dropout
MODEL = dict(hidden_dim=16, num_layers=1, num_heads=2, conv_kernel_size=3, stem_channels=4, part_extractors=False,
             decoder_layers=1, decoder_heads=2, decoder_intermediate_dim=16, max_len=16, dropout=0.0,
             attention_dropout=0.0, decoder_dropout=0.0, decoder_attention_dropout=0.0,
             decoder_activation_dropout=0.0)
BATCH, FRAMES = 4, 8
JAX = keras.backend.backend() == "jax"


def batches():
    """Two micro-batches of ``BATCH`` rows, concatenated (``fit`` cuts them in order): padded frames, and targets
    whose longest differs between the devices' halves (the backward CE length is the global batch's longest)."""
    rng = np.random.default_rng(0)
    n = 2 * BATCH
    mask = np.zeros((n, FRAMES), bool)
    for b, t in enumerate(rng.integers(3, FRAMES + 1, n)):
        mask[b, :t] = True
    tokens = rng.integers(0, 59, (n, 33)).astype("int32")
    for b, t in enumerate(rng.integers(2, 12, n)):
        tokens[b, t:] = 59
    x = {"landmarks": (rng.normal(size=(n, FRAMES, 130, 3)) * mask[..., None, None]).astype("float32"),
         "padding_mask": mask, "decoder_input_ids": rng.integers(0, 63, (n, 33)).astype("int32"),
         "backward_decoder_input_ids": rng.integers(0, 63, (n, 33)).astype("int32")}
    y = {"token_ids": tokens, "backward_token_ids": tokens[:, ::-1].copy(), "score": rng.random(n).astype("float32")}
    return x, y


def one_step(plan, x, y, init):
    from aslfs.config import TrainParams, TrainRoundParams
    from aslfs.models.config import get_config
    from aslfs.models.fingerspeller import FingerSpeller
    from aslfs.training.losses import LossConfig
    from aslfs.training.model import TrainingModel
    from aslfs.training.optim import make_optimizer
    from aslfs.training.schedule import WarmupCosine

    with distribution.scope(plan):
        keras.utils.set_random_seed(0)
        net = FingerSpeller(get_config("tiny", **MODEL))
        model = TrainingModel(net, LossConfig(ctc_weight=0.3, ctc_blank_id=net.ctc_blank_id))
        rp = TrainRoundParams(batch_size=BATCH, grad_accum=2, weight_decay=0.05)
        opt = make_optimizer(WarmupCosine(1e-2, 0, 10), rp, TrainParams(clipnorm=0.05))
        model.compile(optimizer=distribution.prepare_optimizer(opt, plan), jit_compile=JAX, run_eagerly=not JAX)
        model.optimizer.build(model.trainable_variables)
        if init is None:
            init = [keras.ops.convert_to_numpy(v) for v in net.weights]
        for v, value in zip(net.weights, init):
            v.assign(value)
        losses = []
        log = keras.callbacks.LambdaCallback(on_train_batch_end=lambda _, logs: losses.append(float(logs["loss"])))
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[log])
        weights = {v.path: np.asarray(keras.ops.convert_to_numpy(v)) for v in net.weights}
        return losses, weights, init


def check_step() -> dict:
    x, y = batches()
    one_losses, one, init = one_step(distribution.Plan(), x, y, None)
    two_losses, two, _ = one_step(distribution.resolve("data_parallel", 2, BATCH), x, y, init)
    start = dict(zip(one, init))
    # relative to the weight's scale: max |a - b| / (1 + max |a|)
    diffs = {p: float(np.max(np.abs(one[p] - two[p])) / (1.0 + np.max(np.abs(one[p])))) for p in one}
    moved = {p: float(np.max(np.abs(one[p] - start[p]))) for p in one}
    worst = max(diffs, key=diffs.get)
    return {"one": one_losses, "two": two_losses, "max_weight_diff": diffs[worst], "worst": worst,
            "max_update": max(moved.values()),
            "bn_moving_diff": max(v for p, v in diffs.items() if "moving_" in p),
            "bn_moving_moved": max(v for p, v in moved.items() if p.endswith("moving_variance"))}


def check_training() -> dict:
    """One epoch of ``train_model`` on 2 devices: fit, validation (decoding) and the saved model."""
    from aslfs.config import parse_params
    from aslfs.training.trainer import train_model
    from tests.training.fixtures import make_store, tiny_round1_params

    with tempfile.TemporaryDirectory() as tmp:
        store, folds = make_store(tmp, n=16, frames=(8, 16))
        raw = tiny_round1_params(1, round1={"eval_every": 1, "model_overrides": {
            "backward_decoder": False, "confidence_head": False, **{k: v for k, v in MODEL.items() if k != "max_len"},
            "max_len": 16}}, distribution="data_parallel", devices=2, verbose=0)
        raw["train"]["buckets"], raw["sampling"]["max_len"] = [16], 16
        p = parse_params(raw)
        result = train_model(1, 0, 11, store, folds, Path(tmp) / "out", train=p.train, augment=p.augment,
                             sampling=p.sampling, track=False)
        return {"epochs_done": result.epochs_done, "metrics": sorted(result.metrics),
                "model_keras": (result.out_dir / "model.keras").is_file()}


def main():
    t0 = time.perf_counter()
    result = {"backend": keras.backend.backend(),
              "plan": distribution.resolve("data_parallel", 2, BATCH).describe(), **check_step()}
    result["seconds"] = {"start": round(t0 - START, 1), "step": round(time.perf_counter() - t0, 1)}
    if "--train" in sys.argv:
        t0 = time.perf_counter()
        result["train"] = check_training()
        result["seconds"]["train"] = round(time.perf_counter() - t0, 1)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
