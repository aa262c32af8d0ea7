"""The Prefect pipeline flow over a DVC project: task runners (a local Dask cluster), DVC bookkeeping, deployment."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline.conftest import BIN, ROOT, project_env

pytestmark = pytest.mark.slow


def _dvc_status(root: Path) -> str:
    out = subprocess.run([str(BIN / "dvc"), "status", "--json"], cwd=root, capture_output=True, text=True,
                         env=project_env(), check=True)
    return out.stdout.strip()


def _run_flow(root: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.pipeline", "--root", str(root), *args], cwd=ROOT,
                          capture_output=True, text=True, env=project_env(), timeout=timeout)


def test_flow_with_dask_runs_changed_stages_in_parallel_and_commits(toy_project):
    # the fan-out stages stand for trainings: each asks the local cluster (2 workers, 1 GPU each) for a GPU
    proc = _run_flow(toy_project, "--task-runner", "dask", "--max-workers", "2", "--gpus-per-training", "1",
                     "--gpu-stages", "fan")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (toy_project / "out" / "c.txt").read_text() == "777"
    fields = [(toy_project / "out" / f"b{i}.txt").read_text().split() for i in range(3)]
    assert len({f[2] for f in fields}) == 3, "each fan-out stage ran as its own command"
    # each ran on the one GPU of the worker that held its resource, and both workers' GPUs were used
    assert sorted({f[3] for f in fields}) == ["0", "1"], fields
    assert _dvc_status(toy_project) == "{}", "dvc.lock records what the flow ran"
    # nothing changed: the second run runs no stage
    again = _run_flow(toy_project, "--task-runner", "threads")
    assert again.returncode == 0
    assert "stages run: none" in again.stdout + again.stderr
    # an override reruns only what depends on it, and params.yaml keeps the new value
    changed = _run_flow(toy_project, "--set", "folds.seed=8")
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert (toy_project / "out" / "c.txt").read_text() == "888"
    assert "seed: 8" in (toy_project / "params.yaml").read_text()
    assert _dvc_status(toy_project) == "{}"


def test_bad_override_leaves_params_untouched(tmp_path):
    from tests.pipeline.conftest import copy_checkout

    root = copy_checkout(tmp_path / "proj")
    before = (root / "params.yaml").read_text()
    proc = _run_flow(root, "--set", "folds.n_folds=many")
    assert proc.returncode != 0
    assert "folds.n_folds" in proc.stdout + proc.stderr
    assert (root / "params.yaml").read_text() == before


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_deployment_triggered_on_a_local_server(toy_project, tmp_path):
    """Start a Prefect server on 127.0.0.1, serve the deployment, trigger it with the CLI, then clean up."""
    from aslfs import servers

    port = _free_port()
    state = tmp_path / "state"
    state.mkdir()
    env = project_env({"PREFECT_HOME": str(tmp_path / "prefect-home")})
    os.environ["PREFECT_HOME"] = env["PREFECT_HOME"]
    try:
        urls = servers.start(state, prefect_port=port, which=("prefect",), timeout=120)
    finally:
        os.environ.pop("PREFECT_HOME", None)
    env["PREFECT_API_URL"] = urls["prefect"] + "/api"
    serve = subprocess.Popen([sys.executable, "-m", "flows.deploy", "--root", str(toy_project)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:  # wait until the deployment is registered
            ls = subprocess.run([str(BIN / "prefect"), "deployment", "ls"], capture_output=True, text=True, env=env)
            if "aslfs-pipeline/aslfs" in ls.stdout:
                break
            assert time.time() < deadline, "deployment not registered: " + ls.stdout + ls.stderr
            assert serve.poll() is None, serve.stdout.read()
            time.sleep(1)
        run = subprocess.run([str(BIN / "prefect"), "deployment", "run", "aslfs-pipeline/aslfs",
                              "--param", "task_runner=threads", "--watch", "--watch-timeout", "240"],
                             capture_output=True, text=True, env=env, timeout=300)
        if run.returncode != 0:
            import signal

            os.killpg(serve.pid, signal.SIGTERM)
            pytest.fail("deployment run failed:\n" + run.stdout[-2000:] + "\nserver log:\n" + serve.communicate(timeout=30)[0][-4000:])
        assert "Completed" in run.stdout + run.stderr
        assert (toy_project / "out" / "c.txt").read_text() == "777"
    finally:
        import signal

        try:
            os.killpg(serve.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
        servers.stop(state)
    assert servers.status(state) == {}
