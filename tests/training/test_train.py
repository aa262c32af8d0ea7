"""train_model end to end on the tiny preset: a run SIGKILLed after its first checkpoint, then resumed (loader
workers: the shared-memory pool).

One scenario, several checks (each training process compiles the model, ~30 s on 2 cores): the resumed run
continues at the next epoch in the same MLflow run, the loss falls over the ~40 steps, the outputs and the MLflow
run hold what they should.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aslfs.config import load_params
from aslfs.training import checkpoint as ckpt
from aslfs.training.trainer import train_model
from tests.training.fixtures import make_store, tiny_round1_params

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 6
# the loader's own shared-memory worker pool (train.worker_transport), killed with the trainer and started again
PARAMS = tiny_round1_params(EPOCHS, round1={"grad_accum": 2}, workers=2, use_multiprocessing=True,
                            worker_transport="shared_memory", verbose=0)
DRIVER = """
import sys
from aslfs import env; env.setup()
from aslfs.config import load_params
from aslfs.training.trainer import train_model
p = load_params(sys.argv[1])
train_model(1, 0, 11, sys.argv[2], sys.argv[3], sys.argv[4], train=p.train, augment=p.augment, sampling=p.sampling)
"""


def mlflow_client(uri):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.tracking.MlflowClient(uri)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    store, folds = make_store(root, n=40, participants=6, frames=(12, 60))
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    out = root / "out"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db", "ASLFS_ROOT": str(root),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(params), str(store), str(folds), str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 400
    killed_state = None
    try:
        while time.time() < deadline and proc.poll() is None:
            state = ckpt.load_state(out) if (out / "checkpoint" / "state.json").exists() else None
            if state is not None and state.epoch >= 1:
                os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its loader workers
                proc.wait()
                killed_state = ckpt.load_state(out)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert killed_state is not None, proc.stderr.read().decode()[-3000:]
    uri = env["MLFLOW_TRACKING_URI"]
    status_after_kill = mlflow_client(uri).get_run(killed_state.mlflow_run_id).info.status

    old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "ASLFS_ROOT")}
    os.environ.update({"MLFLOW_TRACKING_URI": uri, "ASLFS_ROOT": str(root)})
    try:
        p = load_params(params)
        result = train_model(1, 0, 11, store, folds, out, train=p.train, augment=p.augment, sampling=p.sampling)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"root": root, "out": out, "killed": killed_state, "status_after_kill": status_after_kill,
            "result": result, "uri": uri, "folds": folds}


def test_resumes_at_the_next_epoch(scenario):
    killed, result = scenario["killed"], scenario["result"]
    assert 1 <= killed.epoch < EPOCHS
    assert scenario["status_after_kill"] == "RUNNING"  # SIGKILL leaves it open ...
    assert result.resumed_from_epoch == killed.epoch
    assert result.mlflow_run_id == killed.mlflow_run_id  # ... and the rerun continues the same run
    assert result.epochs_done == EPOCHS and result.seed == 11
    assert [h["epoch"] for h in result.history] == list(range(1, EPOCHS + 1))  # each epoch exactly once
    history = pd.read_csv(scenario["out"] / "history.csv")
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert history.loc[history.epoch.isin([3, 6]), "score"].notna().all()
    assert history.loc[~history.epoch.isin([3, 6]), "score"].isna().all()


def test_loss_falls(scenario):
    history = pd.read_csv(scenario["out"] / "history.csv")
    loss = history["loss"].to_numpy()
    assert loss[-1] < 0.6 * loss[0], loss
    assert np.isfinite(history["val_loss"].dropna()).all()
    assert history["lr"].iloc[0] > history["lr"].iloc[-1] == pytest.approx(0.0, abs=1e-9)


def test_outputs(scenario):
    import keras

    out = scenario["out"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "history.csv", "metrics.json", "model.keras",
                                                     "val_predictions.csv"]
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("score", "cer", "score_dl", "score_pp", "val_loss", "round", "fold", "seed", "epochs_done",
                "mlflow_run_id", "data_version"):
        assert key in metrics
    assert (metrics["round"], metrics["fold"], metrics["seed"], metrics["epochs_done"]) == (1, 0, 11, EPOCHS)
    preds = pd.read_csv(out / "val_predictions.csv", keep_default_na=False)
    assert list(preds.columns) == ["sequence_id", "phrase", "prediction", "seq_len", "confidence", "prediction_pp"]
    folds = pd.read_csv(scenario["folds"])
    assert sorted(preds.sequence_id) == sorted(folds.loc[folds.fold == 0, "sequence_id"])
    net = keras.saving.load_model(out / "model.keras", compile=False)
    assert type(net).__name__ == "FingerSpeller"
    state = ckpt.load_state(out)
    assert state.epoch == EPOCHS and state.resumes == 1
    # the killed run's shared-memory blocks were freed when the resumed run's pool started, and that one's at its end
    assert not [p.name for p in Path("/dev/shm").glob("aslfs-*") if not _alive(int(p.name.split("-")[1]))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_mlflow_run(scenario):
    client = mlflow_client(scenario["uri"])
    run = client.get_run(scenario["result"].mlflow_run_id)
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert p["round"] == "1" and p["fold"] == "0" and p["seed"] == "11"
    assert p["train.round1.epochs"] == str(EPOCHS) and p["model.hidden_dim"] == "32"
    assert "git_commit" in p and len(p["data_version"]) == 16
    assert run.data.tags["aslfs.resumes"] == "1" and run.data.tags["aslfs.kind"] == "train"
    steps = {m.step for m in client.get_metric_history(run.info.run_id, "loss")}
    assert steps == set(range(1, EPOCHS + 1))
    assert {m.step for m in client.get_metric_history(run.info.run_id, "score")} == {3, 6}
    for name in ("lr", "cer", "score_pp", "val_loss"):
        assert client.get_metric_history(run.info.run_id, name)
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "val_predictions.csv", "history.csv", "checkpoint"} <= arts
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == ["checkpoint/last.keras"]
