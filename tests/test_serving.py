"""Serving the registered model: the pyfunc's input handling (one sequence, ragged batches, one-line errors naming the
sequence) and ``aslfs serve`` answering HTTP requests with MLflow's real scoring server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from export.toy_tflite import probe_phrase, write_probe_submission

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 390


def _frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, WIDTH), dtype=np.float32).round(3)


def test_split_sequences_accepts_one_sequence_batches_and_tables():
    from aslfs.landmarks import SELECTED_COLUMNS
    from aslfs.serving.pyfunc import split_sequences

    a, b = _frames(5), _frames(9, seed=1)
    assert [s.shape for s in split_sequences(a)] == [(5, WIDTH)]
    assert [s.shape for s in split_sequences(a.tolist())] == [(5, WIDTH)]
    ragged = split_sequences([a.tolist(), b.tolist(), a[:1].tolist()])
    assert [s.shape for s in ragged] == [(5, WIDTH), (9, WIDTH), (1, WIDTH)]
    np.testing.assert_array_equal(ragged[1], b)
    assert [s.shape for s in split_sequences([a, b])] == [(5, WIDTH), (9, WIDTH)]
    assert [s.shape for s in split_sequences(np.stack([a, a]))] == [(5, WIDTH), (5, WIDTH)]
    with_null = a.tolist()
    with_null[2][7] = None  # JSON null: a missing coordinate
    (got,) = split_sequences([with_null])
    assert np.isnan(got[2, 7]) and np.isnan(got).sum() == 1
    table = pd.DataFrame(np.concatenate([a, b]), columns=list(SELECTED_COLUMNS))
    table.insert(0, "sequence_id", [3] * 5 + [1] * 9)
    assert [s.shape for s in split_sequences(table)] == [(5, WIDTH), (9, WIDTH)]


MALFORMED = [
    ([], "empty input: expected one sequence [n_frames, 390] or a list of them"),
    ([[1.0, 2.0]], "sequence 0: frame 0 has 2 values, expected 390"),
    ("BATCH_WITH_EMPTY", "sequence 1: no frames (expected [n_frames, 390] numbers)"),
    ("BATCH_WITH_TEXT", "sequence 2: values must be numbers or null (could not convert string to float: 'x')"),
    ("BATCH_WITH_SHORT_ROW", "sequence 1: frame 3 has 389 values, expected 390"),
    ([[[[0.5] * WIDTH]]], "sequence 0: frame 0 has 1 values, expected 390"),
    (7, "expected one sequence [n_frames, 390], a list of them or a DataFrame; got int"),
    ({"frames": []}, "expected one sequence [n_frames, 390], a list of them or a DataFrame; got dict"),
]


def _malformed(value):
    good = _frames(4).tolist()
    if value == "BATCH_WITH_EMPTY":
        return [good, []]
    if value == "BATCH_WITH_TEXT":
        return [good, good, [["x"] * WIDTH]]
    if value == "BATCH_WITH_SHORT_ROW":
        return [good, good[:3] + [good[3][:-1]]]
    return value


@pytest.mark.parametrize("value,message", MALFORMED, ids=[m for _, m in MALFORMED])
def test_split_sequences_rejects_malformed_input_in_one_line(value, message):
    from aslfs.errors import DataError
    from aslfs.serving.pyfunc import ServingInputError, split_sequences

    with pytest.raises(ServingInputError) as info:
        split_sequences(_malformed(value))
    assert str(info.value) == message and info.value.message == message
    assert isinstance(info.value, DataError) and info.value.get_http_status_code() == 400


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except OSError:
        return 0


def _post(url: str, body) -> tuple[int, dict]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A probe submission registered as the champion in a temporary store, served by ``aslfs serve`` on a free port;
    yields (invocations URL, the pyfunc loaded in this process, the submission folder). The store stays the module's
    until teardown."""
    import mlflow

    from aslfs import registry, tracking
    from aslfs.servers import free_port

    root = tmp_path_factory.mktemp("serving")
    store = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store)
        mp.setenv("ASLFS_ROOT", str(root))
        mp.delenv("ASLFS_PIPELINE_RUN", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        submission = write_probe_submission(root / "submission")
        with tracking.start_run("export", kind="export"):
            version = registry.register_submission(submission)
        registry.promote_if_better(version.version, 0.5)
        model = mlflow.pyfunc.load_model("models:/asl-fingerspelling@champion")

        port = free_port()
        # the venv's bin folder deliberately NOT on PATH: the command must not need an activated venv
        env = {**os.environ, "PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        log = open(root / "serve.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "stages.cli", "serve", "models:/asl-fingerspelling@champion",
                                 "--port", str(port)], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300  # generous: model load on a busy 2-core machine
            while _get(base + "/ping") != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"aslfs serve did not answer /ping (exit {proc.poll()}):\n"
                                         + (root / "serve.log").read_text(errors="replace")[-3000:])
                time.sleep(0.5)
            yield base + "/invocations", model, submission
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()


def test_server_answers_one_sequence_and_a_ragged_batch(served):
    url, model, _ = served
    one = _frames(123)
    status, body = _post(url, {"inputs": one.tolist()})
    assert status == 200 and body == {"predictions": [probe_phrase(123)]}
    assert body["predictions"] == model.predict(one)

    batch = [_frames(17, seed=1), _frames(250, seed=2), _frames(4, seed=3)]
    status, body = _post(url, {"inputs": [seq.tolist() for seq in batch]})
    assert status == 200 and body == {"predictions": [probe_phrase(17), probe_phrase(250), probe_phrase(4)]}
    assert body["predictions"] == model.predict(batch)
    assert body["predictions"] == model.predict([seq.tolist() for seq in batch])


@pytest.mark.parametrize("value,message", MALFORMED[:5], ids=[m for _, m in MALFORMED[:5]])
def test_server_answers_malformed_input_with_400_and_one_line(served, value, message):
    url, model, _ = served
    status, body = _post(url, {"inputs": _malformed(value)})
    assert status == 400
    assert body["message"] == message
    assert "stack_trace" not in body and "Traceback" not in json.dumps(body)
    with pytest.raises(Exception, match=r"^" + __import__("re").escape(message) + r"$"):
        model.predict(_malformed(value))


def test_serve_reports_bad_arguments_in_one_line(tmp_path):
    from aslfs.errors import DataError
    from aslfs.serving import server

    with pytest.raises(DataError, match=r"^--port 0: not a TCP port$"):
        server.prepare("models:/asl-fingerspelling@champion", 0)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}", "ASLFS_ROOT": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "stages.cli", "serve", "models:/asl-fingerspelling@champion"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "aslfs serve: error: models:/asl-fingerspelling@champion: cannot load the model "
        "(Registered Model with name=asl-fingerspelling not found)"]


def test_a_version_logged_in_an_older_pyfunc_format_is_logged_again(served):
    """Runs last: it adds versions to the module's store (the served champion stays version 1)."""
    from aslfs import registry, tracking

    _, _, submission = served
    client = registry.client()
    assert client.get_model_version("asl-fingerspelling", "1").tags[registry.PYFUNC_TAG] == registry.PYFUNC_FORMAT
    with tracking.start_run("export", kind="export"):
        assert registry.register_submission(submission).version == "1"  # same file, same format: reused
    client.delete_model_version_tag("asl-fingerspelling", "1", registry.PYFUNC_TAG)  # as logged before format 2
    with tracking.start_run("export", kind="export"):
        again = registry.register_submission(submission)
    assert again.version == "2"
    assert client.get_model_version("asl-fingerspelling", "2").tags[registry.PYFUNC_TAG] == registry.PYFUNC_FORMAT
    assert registry.find_version(again.sha256).version == "2"
