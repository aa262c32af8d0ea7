"""Faults: a training process SIGKILLed after its first checkpoint, an interrupted ``dvc repro``, an unreachable
MLflow tracking server. Everything runs as the user runs it (``aslfs train``, ``dvc repro`` in a subprocess).

``tests/training/test_train.py`` kills the library call ``train_model`` and checks the training itself (loss,
outputs, logged metrics); here the command line is killed and rerun, and the checks are the user-visible ones:
where the rerun starts (its own epoch log), that the killed attempt's MLflow run is the one that finishes (no
orphan, no second run), and that nothing is repeated or lost.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bad_inputs_fixtures import error_line, subprocess_env
from tests.training.fixtures import make_store, tiny_round1_params

EPOCHS = 6
PARAMS = tiny_round1_params(EPOCHS, workers=0, verbose=2)


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    store, folds = make_store(root, n=48, participants=6, frames=(12, 48))
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    return {"root": root, "store": store, "folds": folds, "params": params}


def train_argv(t: dict, out: Path) -> list[str]:
    return [sys.executable, "-m", "stages.cli", "train", "1", "0", "11", str(t["store"]), str(t["folds"]), str(out),
            "--params", str(t["params"])]


def saved_epoch(out: Path) -> int:
    """Epochs in the current checkpoint, read without touching it (the trainer may be swapping it)."""
    try:
        return json.loads((out / "checkpoint" / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


# ==================================================================================== SIGKILL during training
@pytest.mark.slow
def test_killed_training_resumes_in_the_same_mlflow_run(training, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from aslfs.training import checkpoint as ckpt

    out = tmp_path / "run"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = subprocess_env({"MLFLOW_TRACKING_URI": uri, "ASLFS_ROOT": str(tmp_path)})
    proc = subprocess.Popen(train_argv(training, out), env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 500
    try:
        while proc.poll() is None and time.time() < deadline and saved_epoch(out) < 1:
            time.sleep(0.02)
        assert proc.poll() is None, "training ended before it could be killed:\n" + proc.stdout.read().decode()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first_log = proc.stdout.read().decode()
    killed = ckpt.load_state(out)
    assert killed is not None and 1 <= killed.epoch < EPOCHS, first_log[-3000:]
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    assert client.get_run(killed.mlflow_run_id).info.status == "RUNNING"  # SIGKILL: no chance to close it

    rerun = subprocess.run(train_argv(training, out), env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    # the rerun's own epoch log starts right after the checkpoint, and runs to the end
    epochs = [int(e) for e in re.findall(rf"^Epoch (\d+)/{EPOCHS}$", rerun.stdout, re.M)]
    assert epochs == list(range(killed.epoch + 1, EPOCHS + 1)), rerun.stdout[-3000:]
    assert f"({EPOCHS} epochs, seed 11) -> {out}" in rerun.stdout
    state = ckpt.load_state(out)
    assert state.epoch == EPOCHS and state.resumes == 1 and state.mlflow_run_id == killed.mlflow_run_id
    history = pd.read_csv(out / "history.csv")
    assert history.epoch.tolist() == list(range(1, EPOCHS + 1))  # each epoch once: none lost, none repeated
    assert json.loads((out / "metrics.json").read_text())["epochs_done"] == EPOCHS

    # MLflow: the killed attempt's run is resumed in place and finishes; no second (orphan) run
    exp = client.get_experiment_by_name("aslfs")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`aslfs.kind` = 'train'")
    assert [r.info.run_id for r in runs] == [killed.mlflow_run_id]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["aslfs.resumes"] == "1"
    assert run.data.tags["aslfs.resumed_from_epoch"] == str(killed.epoch)
    assert {m.step for m in client.get_metric_history(run.info.run_id, "loss")} == set(range(1, EPOCHS + 1))
    assert {m.step for m in client.get_metric_history(run.info.run_id, "score")} == {3, 6}


def test_attempt_killed_before_its_first_checkpoint_is_closed_by_the_rerun(training, tmp_path):
    """A SIGKILL before the first checkpoint leaves a RUNNING MLflow run and nothing to resume. The state is set up
    directly (the run such an attempt leaves, tagged with its output directory); the rerun trains from scratch in a
    new run and marks the orphan KILLED, pointing to its successor."""
    import mlflow
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    exp_id = client.create_experiment("aslfs", artifact_location=(tmp_path / "mlruns").as_uri())
    orphan = client.create_run(exp_id, run_name="train-round1-fold0-seed11",
                               tags={"aslfs.kind": "train", "aslfs.out_dir": str(out.resolve())}).info.run_id
    other = client.create_run(exp_id, tags={"aslfs.kind": "train", "aslfs.out_dir": str(tmp_path / "elsewhere")})
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_round1_params(1, round1={"eval_every": 1}, workers=0, verbose=2)))
    argv = train_argv({**training, "params": params}, out)
    env = subprocess_env({"MLFLOW_TRACKING_URI": uri, "ASLFS_ROOT": str(tmp_path)})
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    new = json.loads((out / "metrics.json").read_text())["mlflow_run_id"]
    assert new != orphan
    stale = client.get_run(orphan)
    assert stale.info.status == "KILLED" and stale.data.tags["aslfs.superseded_by"] == new
    assert client.get_run(new).info.status == "FINISHED"
    assert client.get_run(other.info.run_id).info.status == "RUNNING"  # another output directory: not touched


# ================================================================================= unreachable tracking server
def test_unreachable_tracking_server_is_one_clear_line(training, tmp_path):
    from aslfs.servers import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "run"
    proc = subprocess.run(train_argv(training, out), env=subprocess_env({"MLFLOW_TRACKING_URI": uri}),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    line = error_line(proc, "aslfs train: error: ")
    assert f"MLflow tracking server {uri} is unreachable" in line, line
    assert "MLFLOW_TRACKING_URI" in line  # says how to get out of it
    assert not (out / "checkpoint").exists() and not (out / "model.keras").exists()  # no untracked training ran


# ======================================================================================== interrupted dvc repro
DATA_STAGES = ("synth", "select", "normalize", "folds")


@pytest.mark.slow
def test_interrupted_dvc_repro_recovers_by_rerunning(tmp_path):
    """``dvc repro`` of the data stages is SIGKILLed while ``select`` writes its store; a plain rerun skips the
    finished stage, redoes the rest, leaves no partial store behind and ``dvc status`` is clean."""
    from aslfs.data.store import SequenceStore
    from tests.pipeline.conftest import BIN, copy_checkout, project_env

    root = copy_checkout(tmp_path / "proj")
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    spec["stages"] = {k: v for k, v in spec["stages"].items() if k in DATA_STAGES}
    (root / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["source"] = "synth"
    params["synth"].update(sequences=60, sequences_per_file=15, participants=6, workers=1)
    params["folds"]["n_folds"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = project_env()
    dvc = str(BIN / "dvc")
    assert (root / ".dvc" / "config").is_file()  # the checkout's DVC project (copy_checkout made the git repo)

    data = root / "data"
    proc = subprocess.Popen([dvc, "repro"], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 400
    partial = []
    try:
        while proc.poll() is None and time.time() < deadline:
            partial = [p for p in data.glob(".selected.tmp-*") if any(p.glob("shards/*.npy"))] if data.is_dir() else []
            if partial:
                os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage process it runs
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log = proc.stdout.read().decode()
    assert partial, "select was never caught writing:\n" + log[-3000:]
    assert not (data / "selected").exists() and (data / "raw" / "train.csv").is_file()
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert list(lock["stages"]) == ["synth"]  # only the finished stage is recorded

    rerun = subprocess.run([dvc, "repro"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    assert "Stage 'synth' didn't change, skipping" in rerun.stdout
    for stage in DATA_STAGES[1:]:
        assert f"Running stage '{stage}'" in rerun.stdout
    status = subprocess.run([dvc, "status"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and "Data and pipelines are up to date." in status.stdout, status.stdout
    assert sorted(p.name for p in data.iterdir()) == ["folds.csv", "normalized", "raw", "selected"]  # no debris
    selected = SequenceStore(data / "selected")
    assert len(selected) == 60 and len(SequenceStore(data / "normalized")) == 60
    assert sorted(pd.read_csv(data / "folds.csv").sequence_id) == sorted(selected.index.sequence_id)
