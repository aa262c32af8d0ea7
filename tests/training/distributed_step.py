"""Run in a subprocess by ``test_distribution.py``: one optimizer step (two accumulated micro-batches, clipping
active) of a tiny round-2 model on one device and on two virtual CPU devices, same global batch; prints one line
``RESULT {json}`` with the losses and the largest weight differences.

The device count is fixed when the backend initialises, so the process sets it first: ``XLA_FLAGS`` (JAX) or two
logical CPU devices (TensorFlow). Usage: ``KERAS_BACKEND=jax|tensorflow python tests/training/distributed_step.py``.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf  # test-only: two logical CPU devices before TensorFlow initialises

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from aslfs.config import TrainParams, TrainRoundParams  # noqa: E402
from aslfs.models.config import get_config  # noqa: E402
from aslfs.models.fingerspeller import FingerSpeller  # noqa: E402
from aslfs.training import distribution  # noqa: E402
from aslfs.training.losses import LossConfig  # noqa: E402
from aslfs.training.model import TrainingModel  # noqa: E402
from aslfs.training.optim import make_optimizer  # noqa: E402
from aslfs.training.schedule import WarmupCosine  # noqa: E402

NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, decoder_dropout=0.0, decoder_attention_dropout=0.0,
                  decoder_activation_dropout=0.0, drop_path=0.0)
BATCH, FRAMES = 4, 16


def micro_batches():
    rng = np.random.default_rng(0)
    out = []
    for _ in range(2):
        mask = np.zeros((BATCH, FRAMES), bool)
        for b, n in enumerate(rng.integers(6, FRAMES + 1, BATCH)):
            mask[b, :n] = True
        tokens = rng.integers(0, 59, (BATCH, 33)).astype("int32")
        lengths = rng.integers(2, 12, BATCH)  # different longest targets per device: the backward CE length
        for b, n in enumerate(lengths):
            tokens[b, n:] = 59
        x = {"landmarks": (rng.normal(size=(BATCH, FRAMES, 130, 3)) * mask[..., None, None]).astype("float32"),
             "padding_mask": mask, "decoder_input_ids": rng.integers(0, 63, (BATCH, 33)).astype("int32"),
             "backward_decoder_input_ids": rng.integers(0, 63, (BATCH, 33)).astype("int32")}
        y = {"token_ids": tokens, "backward_token_ids": tokens[:, ::-1].copy(),
             "score": rng.random(BATCH).astype("float32")}
        out.append((x, y))
    return out


def one_step(plan, batches, init):
    with distribution.scope(plan):
        keras.utils.set_random_seed(0)
        cfg = get_config("tiny", **{k: v for k, v in NO_DROPOUT.items() if k != "drop_path"})
        net = FingerSpeller(cfg)
        model = TrainingModel(net, LossConfig(ctc_weight=0.3, ctc_blank_id=net.ctc_blank_id))
        rp = TrainRoundParams(batch_size=BATCH, grad_accum=2, weight_decay=0.05)
        opt = distribution.prepare_optimizer(make_optimizer(WarmupCosine(1e-2, 0, 10), rp, TrainParams(clipnorm=0.5)),
                                             plan)
        model.compile(optimizer=opt, jit_compile=False)
        model.optimizer.build(model.trainable_variables)
        if init is not None:
            for v, value in zip(net.weights, init):
                v.assign(value)
        losses = [float(np.asarray(model.train_on_batch(x, y, return_dict=True)["loss"])) for x, y in batches]
        return losses, [np.asarray(keras.ops.convert_to_numpy(v)) for v in net.weights], \
            [v.path for v in net.weights]


def main():
    batches = micro_batches()
    plan2 = distribution.resolve("data_parallel", 2, BATCH)
    # both start from the same weights: take them from a fresh single-device build
    keras.utils.set_random_seed(0)
    init = [np.asarray(keras.ops.convert_to_numpy(v)) for v in FingerSpeller(get_config("tiny")).weights]
    one_losses, one_weights, paths = one_step(distribution.Plan(), batches, init)
    two_losses, two_weights, _ = one_step(plan2, batches, init)
    # relative to the weight's scale (BatchNorm moving variances of raw features are in the thousands)
    diffs = {p: float(np.max(np.abs(a - b)) / (1.0 + np.max(np.abs(a)))) for p, a, b in zip(paths, one_weights,
                                                                                           two_weights)}
    moved = {p: float(np.max(np.abs(a - b))) for p, a, b in zip(paths, one_weights, init)}
    worst = max(diffs, key=diffs.get)
    print("RESULT " + json.dumps({
        "backend": keras.backend.backend(), "plan": plan2.describe(), "one": one_losses, "two": two_losses,
        "max_weight_diff": diffs[worst], "worst": worst, "min_update": min(v for v in moved.values()),
        "bn_moving_diff": max(v for p, v in diffs.items() if "moving_" in p),
        "bn_moving_moved": max(v for p, v in moved.items() if p.endswith("moving_mean")),
        "max_update": max(moved.values())}))


if __name__ == "__main__":
    main()
