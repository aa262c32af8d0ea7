"""Security basics: local servers listen on 127.0.0.1 only; nothing untrusted is unpickled or executed on load
(stores, models, parameter files); paths read from csv files cannot leave the data directory."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aslfs.errors import ConfigError, DataError
from bad_inputs_fixtures import FILE1_IDS, ROOT, error_line, run_aslfs, write_base_corpus
from helpers import demo_params_file

PACKAGES = ("aslfs", "stages", "flows", "benchmarks")


def python_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py"))


def calls(tree: ast.AST, attr: str):
    """Every call ``<anything>.attr(...)`` or ``attr(...)`` in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name == attr:
                yield node


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


# ============================================================================================== servers: 127.0.0.1
def test_server_command_lines_bind_localhost(tmp_path):
    from aslfs import servers

    assert servers.HOST == "127.0.0.1"
    specs = servers.server_specs(tmp_path, 4200, 5000)
    assert set(specs) == {"prefect", "mlflow"}
    for name, spec in specs.items():
        cmd = spec["cmd"]
        assert cmd[cmd.index("--host") + 1] == "127.0.0.1", (name, cmd)
        assert cmd.count("--host") == 1 and not any("0.0.0.0" in part or "::" == part for part in cmd)
        assert spec["url"].startswith("http://127.0.0.1:") and spec["health"].startswith("http://127.0.0.1:")
    # nothing in the code base asks for a wildcard address
    for path in python_files():
        assert "0.0.0.0" not in path.read_text(), path


def test_free_port_probes_localhost(monkeypatch):
    import socket

    from aslfs import servers

    bound = []
    real_bind = socket.socket.bind

    def spy(self, address):
        bound.append(address)
        return real_bind(self, address)

    monkeypatch.setattr(socket.socket, "bind", spy)
    port = servers.free_port()
    assert bound == [("127.0.0.1", 0)] and 1024 <= port <= 65535


def test_mlflow_server_listens_on_localhost_only(tmp_path):
    """Start the real MLflow server (about 5 s) and read its listening sockets from the OS."""
    psutil = pytest.importorskip("psutil")
    from aslfs import servers

    port = servers.free_port()
    try:
        urls = servers.start(tmp_path, mlflow_port=port, which=("mlflow",), timeout=90)
        assert urls == {"mlflow": f"http://127.0.0.1:{port}"}
        proc = psutil.Process(servers.status(tmp_path)["mlflow"]["pid"])
        listening = set()
        for p in [proc, *proc.children(recursive=True)]:
            try:
                listening |= {c.laddr.ip for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
            except psutil.Error:
                pass
        assert listening == {"127.0.0.1"}
    finally:
        assert servers.stop(tmp_path) == ["mlflow"]


# ======================================================================================== nothing untrusted is run
def test_no_pickle_anywhere_in_the_code():
    """No module imports a pickle-based loader; every ``np.load`` keeps ``allow_pickle`` off; every Keras model load
    keeps ``safe_mode`` on; YAML is read safely."""
    unsafe_modules = {"pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal", "torch"}
    # torch is imported by exactly one module, the checkpoint reader, and every torch.load there is weights-only
    torch_reader = "aslfs/interop/reference_checkpoint.py"
    checked_np_load = checked_keras = checked_torch_load = 0
    for path in python_files():
        tree = ast.parse(path.read_text(), str(path))
        allowed = {"torch"} if path.relative_to(ROOT).as_posix() == torch_reader else set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & (unsafe_modules - allowed), (path, node.lineno)
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in unsafe_modules - allowed, (path, node.lineno)
        for call in calls(tree, "load"):
            f = call.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "torch":
                value = keyword(call, "weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, (path, call.lineno)
                checked_torch_load += 1
        for call in calls(tree, "load"):
            f = call.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in ("np", "numpy"):
                value = keyword(call, "allow_pickle")
                assert value is None or (isinstance(value, ast.Constant) and value.value is False), (path, call.lineno)
                checked_np_load += 1
        for call in calls(tree, "load_model"):
            value = keyword(call, "safe_mode")
            assert value is None or (isinstance(value, ast.Constant) and value.value is True), (path, call.lineno)
            checked_keras += 1
        for name in ("read_pickle", "unsafe_load", "full_load"):
            assert not list(calls(tree, name)), (path, name)
        text = path.read_text()
        assert "yaml.Loader" not in text and "UnsafeLoader" not in text and "typ='unsafe'" not in text, path
    assert checked_np_load >= 3 and checked_keras >= 1 and checked_torch_load >= 1  # the scan saw the loaders


class _Trap:
    """Unpickling this creates ``path``: proof that a pickle was executed."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_store_with_a_pickled_shard_is_refused(tmp_path):
    from aslfs.data.store import SequenceStore, write_index, write_meta

    store = tmp_path / "store"
    (store / "shards").mkdir(parents=True)
    marker = tmp_path / "executed"
    payload = np.empty((3, 390), dtype=object)
    payload[...] = _Trap(marker)
    np.save(store / "shards" / "1.npy", payload, allow_pickle=True)
    write_index(store, pd.DataFrame([{"file_id": 1, "sequence_id": 7, "participant_id": 0, "phrase": "x",
                                      "seq_len": 3, "is_supplemental": False, "shard": "1", "offset": 0}]))
    write_meta(store, "selected", (390,))
    with pytest.raises(DataError) as info:
        SequenceStore(store).load(0)
    assert str(store / "shards" / "1.npy") in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()
    # the same through a command: one line, nothing run
    line = error_line(run_aslfs("normalize", store, tmp_path / "norm"), "aslfs normalize: error: ")
    assert "1.npy" in line and not marker.exists() and not (tmp_path / "norm").exists()


def test_store_index_cannot_point_outside_the_store(tmp_path):
    from aslfs.data.store import SequenceStore, shard_path, write_index, write_meta

    outside = tmp_path / "secret.npy"
    np.save(outside, np.zeros((3, 390), np.float32))
    store = tmp_path / "store"
    store.mkdir()
    write_index(store, pd.DataFrame([{"file_id": 1, "sequence_id": 7, "participant_id": 0, "phrase": "x",
                                      "seq_len": 3, "is_supplemental": False, "shard": "../secret", "offset": 0}]))
    write_meta(store, "selected", (390,))
    with pytest.raises(DataError, match=r"invalid shard name '\.\./secret'"):
        SequenceStore(store).load(0)
    for bad in ("../x", "/etc/passwd", "..", "a/b", ""):
        with pytest.raises(DataError):
            shard_path(store, bad)


def test_keras_model_with_code_is_refused(tmp_path, monkeypatch):
    """A ``.keras`` file carrying Python code (a Lambda layer) does not load: Keras' safe mode stays on."""
    import keras

    from aslfs.export.members import trained_members

    marker = tmp_path / "executed"
    monkeypatch.setenv("ASLFS_TEST_TRAP", str(marker))
    trap = eval('lambda x: x * 2.0 + float(__import__("pathlib").Path(__import__("os").environ["ASLFS_TEST_TRAP"])'
                '.touch() is None)')  # no closure: the code alone is saved
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(trap)(inputs)
    path = tmp_path / "run" / "model.keras"
    path.parent.mkdir()
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model above ran the lambda once
    with pytest.raises(DataError) as info:
        trained_members([path.parent])
    message = str(info.value)
    assert str(path) in message and "\n" not in message and "arbitrary code execution" in message
    assert not marker.exists()


def test_params_yaml_with_python_tags_is_refused(tmp_path, base_raw):
    from aslfs.config import load_params

    marker = tmp_path / "executed"
    evil = tmp_path / "params.yaml"
    evil.write_text(f"select: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path "
                    f"['{marker}']]\n")
    with pytest.raises(ConfigError, match=r"not valid YAML"):
        load_params(evil)
    line = error_line(run_aslfs("select", base_raw, tmp_path / "sel", "--params", evil), "aslfs select: error: ")
    assert str(evil) in line and not marker.exists()


# =============================================================================== csv paths stay in the data dir
@pytest.fixture(scope="module")
def base_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("secraw")
    write_base_corpus(root / "raw")
    return root / "raw"


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    from export.toy_tflite import write_probe_submission

    return write_probe_submission(tmp_path_factory.mktemp("probe"))


def test_resolve_path_refuses_escapes(tmp_path):
    from aslfs.data.metadata import resolve_path

    assert resolve_path(tmp_path, "train_landmarks/1.parquet") == tmp_path / "train_landmarks" / "1.parquet"
    assert resolve_path(tmp_path, "train_landmarks/./x/../1.parquet") == tmp_path / "train_landmarks" / "1.parquet"
    for bad in ("../1.parquet", "train_landmarks/../../1.parquet", "/etc/passwd", str(tmp_path / "a.parquet"),
                "..", ".", "", "train_landmarks/../.."):
        assert resolve_path(tmp_path, bad) is None, bad


def _escape(raw: Path, kind: str) -> str:
    """Point sequence 101's csv path at a copy of its own file outside ``raw``; returns the path written."""
    outside = raw.parent / f"outside-{kind}" / "1.parquet"
    outside.parent.mkdir(exist_ok=True)
    shutil.copy(raw / "train_landmarks" / "1.parquet", outside)
    rel = os.path.relpath(outside, raw) if kind == "dotdot" else str(outside)
    csv = raw / "train.csv"
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    df.loc[df.file_id == "1", "path"] = rel
    df.loc[df.file_id == "1", "file_id"] = "9"  # a file id of its own (one id, one path)
    df.to_csv(csv, index=False)
    return rel


@pytest.mark.parametrize("consumer", ("select", "select_skip", "predict", "render"))
@pytest.mark.parametrize("kind", ("dotdot", "absolute"))
def test_csv_paths_cannot_leave_the_data_directory(kind, consumer, base_raw, probe, tmp_path):
    from aslfs.data.reader import load_sequence
    from aslfs.data.store import SequenceStore

    raw = tmp_path / "raw"
    shutil.copytree(base_raw, raw)
    rel = _escape(raw, kind)
    assert rel.startswith("..") if kind == "dotdot" else os.path.isabs(rel)
    message = r"path '" + rel.replace(".", r"\.") + r"' leaves the data directory"

    if consumer == "render":  # the library path under `aslfs render`
        with pytest.raises(DataError, match=message):
            load_sequence(raw, FILE1_IDS[0])
        return
    if consumer == "predict":
        proc = run_aslfs("predict", probe, raw, "--out", tmp_path / "p.csv")
        assert re.search(message, error_line(proc, "aslfs predict: error: "))
        assert not (tmp_path / "p.csv").exists()
        return
    policy = "error" if consumer == "select" else "skip"
    proc = run_aslfs("select", raw, tmp_path / "sel", "--params", demo_params_file(), "--on-invalid", policy)
    if consumer == "select":
        line = error_line(proc, "aslfs select: error: ")
        assert re.search(r"train\.csv: sequence \d+: " + message, line), line
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = SequenceStore(tmp_path / "sel")
    assert not set(FILE1_IDS) & set(store.index.sequence_id)  # the outside file was never read
    report = json.loads((tmp_path / "sel" / "report.json").read_text())
    assert report["skipped"]["path_outside_data_dir"]["sequence_ids"] == list(FILE1_IDS)
    assert report["files"] == 1 and report["parquet_bytes"] == (raw / "train_landmarks" / "2.parquet").stat().st_size

