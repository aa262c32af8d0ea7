"""Multi-process (multi-host) training on JAX: ``aslfs train ... --coordinator --num-processes --process-id``.

Two processes on localhost (one CPU device each, Gloo collectives) against one process with two virtual CPU devices
and the same global batches: the trained weights are **equal** (measured: a maximum difference of exactly 0, the
same global XLA program on the same data), after three epochs of a tiny round-1 model without dropout. Then one
process of a two-process training is killed after its first checkpoint (the other, blocked in a collective, is ended
as a cluster scheduler would): the rerun resumes from that checkpoint, its history holds every epoch once, and its
weights equal the uninterrupted run's, so no epoch was lost or repeated.

Every run is ``aslfs train`` in fresh interpreters; they share a JAX compilation cache, so that the later runs do not
compile again (about 25 s per run instead of 80 s on 2 cores). The plan errors and the loader's per-process shares
are checked in-process.
"""

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aslfs.errors import ConfigError
from aslfs.training import distribution
from tests.bad_inputs_fixtures import subprocess_env
from tests.training.fixtures import make_store, tiny_round1_params, training_batches_setup

ROOT = Path(__file__).resolve().parents[2]
#: a tiny round-1 model without dropout (so that a resumed run must equal an uninterrupted one exactly)
MODEL = dict(hidden_dim=16, num_layers=1, num_heads=2, conv_kernel_size=3, stem_channels=4, part_extractors=False,
             decoder_layers=1, decoder_heads=2, decoder_intermediate_dim=16, max_len=16, dropout=0.0,
             attention_dropout=0.0, decoder_dropout=0.0, decoder_attention_dropout=0.0,
             decoder_activation_dropout=0.0, backward_decoder=False, confidence_head=False)
EPOCHS = 3

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="jax is not installed (pip install -e '.[jax]')")


# ------------------------------------------------------------------------------------------------ in-process checks
def test_cluster_from_flags_and_environment():
    assert distribution.Cluster.from_args(None, None, None, environ={}) is None
    assert distribution.Cluster.from_args("h0:1234", 2, 1, environ={}) == distribution.Cluster("h0:1234", 2, 1)
    env = {"ASLFS_COORDINATOR": "10.0.0.1:5000", "ASLFS_NUM_PROCESSES": "4", "ASLFS_PROCESS_ID": "3"}
    assert distribution.Cluster.from_args(None, None, None, environ=env) == distribution.Cluster("10.0.0.1:5000", 4, 3)
    assert distribution.Cluster.from_args(None, None, 0, environ=env).process == 0  # a flag beats its variable
    with pytest.raises(ConfigError, match=r"--process-id \(ASLFS_PROCESS_ID\) not given"):
        distribution.Cluster.from_args("h0:1234", 2, None, environ={})
    with pytest.raises(ConfigError, match="process id 2 is not in 0..1"):
        distribution.Cluster.from_args("h0:1234", 2, 2, environ={})
    with pytest.raises(ConfigError, match="must be HOST:PORT"):
        distribution.Cluster.from_args("h0", 2, 0, environ={})
    distribution.join_cluster(None)  # one process: nothing to join
    distribution.join_cluster(distribution.Cluster("h0:1", 1, 0))


def test_only_jax_joins_a_cluster():
    import keras

    if keras.backend.backend() == "jax":
        pytest.skip("this process runs JAX (the suite runs on TensorFlow)")
    with pytest.raises(ConfigError, match=r"needs the JAX backend \(KERAS_BACKEND=jax\), this is tensorflow"):
        distribution.join_cluster(distribution.Cluster("127.0.0.1:1", 2, 0))


def test_cluster_plans(monkeypatch):
    monkeypatch.setattr(distribution, "process_index", lambda: (1, 2))
    monkeypatch.setattr(distribution, "accelerators", lambda: [f"gpu:{i}" for i in range(16)])
    plan = distribution.resolve("auto", 0, 64)
    assert (plan.mode, plan.replicas, plan.processes, plan.process, plan.chief) == ("data_parallel", 16, 2, 1, False)
    assert "16 devices in 2 processes (gpu:0 ... gpu:15)" in plan.describe()
    with pytest.raises(ConfigError, match="distribution: off, but this is process 1 of a 2-process training"):
        distribution.resolve("off", 0, 64)
    with pytest.raises(ConfigError, match="8 devices requested, but a multi-process training uses every device"):
        distribution.resolve("data_parallel", 8, 64)
    with pytest.raises(ConfigError, match="batch_size 24 is not divisible by 16 devices in 2 processes"):
        distribution.resolve("auto", 0, 24)


def test_process_shares_make_up_the_global_batch(tmp_path):
    from aslfs.training.loader import SequenceBatches

    store, table, kwargs = training_batches_setup(tmp_path, n=22, seed=5, batch_multiple=4)
    whole = SequenceBatches(store, table, 8, **kwargs)
    shares = [SequenceBatches(store, table, 8, process_share=(p, 2), **kwargs) for p in range(2)]
    assert len(whole) == len(shares[0]) == len(shares[1])
    for idx in range(len(whole)):
        x, y = whole.batch(idx)
        parts = [s.batch(idx) for s in shares]
        for key in x:  # same padded length in both processes, halves in process order
            np.testing.assert_array_equal(np.concatenate([p[0][key] for p in parts]), x[key])
        for key in y:
            np.testing.assert_array_equal(np.concatenate([p[1][key] for p in parts]), y[key])
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        SequenceBatches(store, table, 8, process_share=(0, 3), **kwargs)


# ------------------------------------------------------------------------------------------------ processes
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    store, folds = make_store(root, n=16, frames=(8, 16))
    raw = tiny_round1_params(EPOCHS, round1={"eval_every": EPOCHS, "grad_accum": 1, "warmup_epochs": 0,
                                             "model_overrides": MODEL},
                             distribution="data_parallel", devices=0, workers=0)
    raw["train"]["buckets"], raw["sampling"]["max_len"] = [16], 16
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    env = subprocess_env({"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "",
                          "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
                          "JAX_COMPILATION_CACHE_DIR": str(root / "jax-cache"),
                          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                          "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
    args = ["1", "0", "11", str(store), str(folds)]
    one = root / "one"  # the reference: one process, two virtual devices
    proc = subprocess.run(_command(args, one), cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**env, "XLA_FLAGS": env["XLA_FLAGS"] + " --xla_force_host_platform_device_count=2"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {"root": root, "env": env, "args": args, "one": one}


def _command(args, out, *extra, params: str = "params.yaml"):
    return [sys.executable, "-m", "stages.cli", "train", *args, str(out), "--params",
            str(Path(args[3]).parent / params), "--no-track", *extra]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(setup, out: Path, kill_after_epoch: int | None = None) -> list[str]:
    """``aslfs train`` as processes 0 and 1 of a training; returns their outputs. With ``kill_after_epoch``, process 1
    is killed once the checkpoint of that epoch is complete, then process 0 (blocked in the next collective)."""
    port = _free_port()
    logs = [out.parent / f"{out.name}.process{i}.log" for i in range(2)]
    procs = [subprocess.Popen(_command(setup["args"], out, "--coordinator", f"127.0.0.1:{port}", "--num-processes",
                                       "2", "--process-id", str(i)),
                              cwd=ROOT, env=setup["env"], stdout=open(log, "w"), stderr=subprocess.STDOUT)
             for i, log in enumerate(logs)]
    try:
        if kill_after_epoch is not None:
            state = out / "checkpoint" / "state.json"
            deadline = time.time() + 300
            while not (state.is_file() and json.loads(state.read_text())["epoch"] >= kill_after_epoch):
                assert procs[0].poll() is None and time.time() < deadline, logs[0].read_text()[-3000:]
                time.sleep(0.1)
            procs[1].send_signal(signal.SIGKILL)
            time.sleep(1)
            procs[0].send_signal(signal.SIGKILL)
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    texts = [log.read_text() for log in logs]
    if kill_after_epoch is None:
        assert codes == [0, 0], "\n=====\n".join(t[-3000:] for t in texts)
    return texts


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    import aslfs.models.fingerspeller  # noqa: F401  (registers the class)

    return [np.asarray(w) for w in keras.models.load_model(path, compile=False).weights]


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert len(wa) == len(wb) > 50
    worst = max(float(np.max(np.abs(x - y))) for x, y in zip(wa, wb))
    assert worst <= 1e-6, worst


@pytest.mark.jax
@pytest.mark.slow
@needs_jax
def test_two_processes_train_the_weights_of_one_process_with_two_devices(setup):
    out = setup["root"] / "two"
    texts = _two_processes(setup, out)
    assert "process 0 of 2 (writes the run and its MLflow run)" in texts[0] and "process 1 of 2\n" in texts[1]
    assert "data-parallel on 2 devices in 2 processes" in texts[0]
    _assert_same_weights(out / "model.keras", setup["one"] / "model.keras")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_done"] == EPOCHS and metrics["devices"] == 2
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == list(range(1, EPOCHS + 1))
    # the chief's files alone (process 1 writes nothing)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "history.csv", "metrics.json", "model.keras",
                                                     "val_predictions.csv"]
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


@pytest.mark.jax
@pytest.mark.slow
@needs_jax
def test_killed_two_process_training_resumes_without_losing_or_repeating_an_epoch(setup):
    out = setup["root"] / "killed"
    _two_processes(setup, out, kill_after_epoch=1)
    assert not (out / "model.keras").exists()
    done = json.loads((out / "checkpoint" / "state.json").read_text())["epoch"]
    assert 1 <= done < EPOCHS
    texts = _two_processes(setup, out)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == EPOCHS
    assert [h["epoch"] for h in state["history"]] == list(range(1, EPOCHS + 1))  # each epoch once
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert f"Epoch {done + 1}/{EPOCHS}" in texts[0] and f"Epoch {done}/{EPOCHS}" not in texts[0]
    _assert_same_weights(out / "model.keras", setup["one"] / "model.keras")  # as if never interrupted


@pytest.mark.jax
@pytest.mark.slow
@needs_jax
def test_shared_memory_workers_train_the_weights_of_the_in_process_loader(setup):
    """The loader's shared-memory worker pool in a real JAX training: the reference run again (one process, two
    virtual devices), its batches made by two spawned worker processes and lent to JAX out of the smallest ring
    (two slots in flight), gives the same weights as the in-process loader. (That a lent slot is never rewritten
    while its arrays live is checked directly in tests/training/test_loader.py.)"""
    raw = yaml.safe_load((setup["root"] / "params.yaml").read_text())
    raw["train"].update(workers=2, use_multiprocessing=True, worker_transport="shared_memory", max_queue_size=1)
    (setup["root"] / "params-shm.yaml").write_text(yaml.safe_dump(raw))
    out = setup["root"] / "one-shm"
    env = {**setup["env"], "XLA_FLAGS": setup["env"]["XLA_FLAGS"] + " --xla_force_host_platform_device_count=2"}
    proc = subprocess.run(_command(setup["args"], out, params="params-shm.yaml"), cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    _assert_same_weights(out / "model.keras", setup["one"] / "model.keras")
