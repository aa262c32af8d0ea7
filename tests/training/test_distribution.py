"""Data-parallel training (aslfs.training.distribution): device planning, partial-batch trimming, and one optimizer
step on 2 virtual CPU devices against 1 device with the same global batch, on JAX and on TensorFlow.

The 2-device checks run ``tests/training/distributed_checks.py`` in one subprocess per backend (the device count is
fixed when the backend initialises). Tolerance: losses within 1e-5 relative, every weight (moving BatchNorm
statistics included, which are synchronised) within 1e-4 of its scale (``max |a − b| / (1 + max |a|)``; measured:
about 5e-7 on JAX, 2e-6 on TensorFlow), against updates of order 1e-1; what remains is float summation order.
The same process then runs a whole ``train_model`` on 2 devices (an epoch, validation, ``model.keras``); on
TensorFlow that is also a second data-parallel model in one process, which collided with the first one's collectives
before the strategy was shared.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aslfs.config import TrainParams
from aslfs.errors import ConfigError
from aslfs.training import distribution
from aslfs.training.loader import SequenceBatches
from tests.training.fixtures import training_batches_setup

SCRIPT = Path(__file__).with_name("distributed_checks.py")


def test_plans(monkeypatch):
    assert distribution.resolve("off", 0, 8) == distribution.Plan()
    assert distribution.resolve("auto", 0, 8).mode == "off"  # this machine: CPU only → single device
    monkeypatch.setattr(distribution, "accelerators", lambda: ["gpu:0", "gpu:1", "gpu:2", "gpu:3"])
    plan = distribution.resolve("auto", 0, 64)
    assert plan.mode == "data_parallel" and plan.replicas == 4 and plan.devices[-1] == "gpu:3"
    assert distribution.resolve("data_parallel", 2, 64).devices == ("gpu:0", "gpu:1")
    assert distribution.resolve("data_parallel", 1, 64).mode == "off"
    with pytest.raises(ConfigError, match=r"^train.round2: batch_size 6 is not divisible by 4 devices"):
        distribution.resolve("auto", 0, 6, "train.round2")
    with pytest.raises(ConfigError, match="8 devices requested, 4 visible"):
        distribution.resolve("data_parallel", 8, 64)
    with pytest.raises(ConfigError):
        distribution.resolve("model_parallel", 0, 64)


def test_params_take_the_modes():
    assert TrainParams().distribution == "auto" and TrainParams().devices == 0
    assert TrainParams(distribution="data_parallel", devices=2).devices == 2
    with pytest.raises(ValueError):
        TrainParams(distribution="ddp")


def test_partial_batches_are_trimmed_to_the_device_count(tmp_path):
    store, table, kwargs = training_batches_setup(tmp_path, n=23, seed=3)
    full = SequenceBatches(store, table, 4, **kwargs)
    trimmed = SequenceBatches(store, table, 4, batch_multiple=3, **kwargs)
    assert sorted(len(full.rows(i)) for i in range(len(full))) == [3] + [4] * 5  # 23 = 5 x 4 + 3
    sizes = [len(trimmed.rows(i)) for i in range(len(trimmed))]
    assert all(s % 3 == 0 and s > 0 for s in sizes) and sum(sizes) == 5 * 3 + 3
    for i in range(len(trimmed)):  # the same batches, cut
        assert set(trimmed.rows(i)) <= set(full.rows(i))


def _run(backend: str, *args: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def _check(result: dict) -> None:
    assert result["plan"].startswith("data-parallel on 2 devices")
    np.testing.assert_allclose(result["two"], result["one"], rtol=1e-5)
    assert result["max_update"] > 1e-2  # the step moved the weights ...
    # ... identically on 1 and 2 devices
    assert result["max_weight_diff"] < 1e-4, (result["worst"], result["max_weight_diff"])
    assert result["bn_moving_moved"] > 1e-2 and result["bn_moving_diff"] < 1e-4  # synchronised BatchNorm


def _check_training(result: dict) -> None:
    # a whole train_model on 2 devices: an epoch, its validation (decoding) and the exported model.keras
    assert result["train"]["epochs_done"] == 1 and "val_loss" in result["train"]["metrics"]
    assert result["train"]["model_keras"]


@pytest.mark.jax
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[jax]')")
def test_two_devices_equal_one_and_train_on_jax():
    result = _run("jax", "--train")
    _check(result)
    _check_training(result)


@pytest.mark.slow
def test_two_devices_equal_one_and_train_on_tensorflow():
    result = _run("tensorflow", "--train")
    _check(result)
    _check_training(result)
