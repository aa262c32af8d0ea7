"""Local Prefect and MLflow servers for browsing runs: ``aslfs servers start|stop|status``.

Both bind 127.0.0.1 only. Their pids and logs live in ``<root>/.servers/``; ``stop`` terminates them (then kills
after a grace period), so nothing is left running. The MLflow server serves the project's ``mlflow.db`` and
``mlruns/`` (the same store the pipeline writes); the Prefect server keeps its own database under ``~/.prefect``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aslfs.atomic import write_json
from aslfs.errors import AslfsError

HOST = "127.0.0.1"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def healthy(url: str) -> bool:
    """Whether ``url`` answers HTTP 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def server_specs(root: Path, prefect_port: int, mlflow_port: int) -> dict[str, dict]:
    return {
        "prefect": {
            "cmd": [_bin("prefect"), "server", "start", "--host", HOST, "--port", str(prefect_port)],
            "health": f"http://{HOST}:{prefect_port}/api/health",
            "url": f"http://{HOST}:{prefect_port}",
            "env": {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "true"},
        },
        "mlflow": {
            "cmd": [
                _bin("mlflow"), "server", "--host", HOST, "--port", str(mlflow_port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "mlruns"),
            ],
            "health": f"http://{HOST}:{mlflow_port}/health",
            "url": f"http://{HOST}:{mlflow_port}",
            "env": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"},
        },
    }


def start(root: str | Path = ".", prefect_port: int = 4200, mlflow_port: int = 5000, timeout: float = 90.0,
          which: tuple[str, ...] = ("prefect", "mlflow")) -> dict[str, str]:
    """Start the servers in the background and wait until they answer; returns name → URL."""
    root = Path(root).resolve()
    state_dir = root / ".servers"
    state_dir.mkdir(exist_ok=True)
    urls = {}
    for name, spec in server_specs(root, prefect_port, mlflow_port).items():
        if name not in which:
            continue
        if healthy(spec["health"]):
            raise AslfsError(f"{name}: something already answers on {spec['url']}; stop it or choose another port")
        log = open(state_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(spec["cmd"], cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **spec["env"]})
        write_json(state_dir / f"{name}.json", {"pid": proc.pid, "url": spec["url"]}, indent=None)
        urls[name] = spec["url"]
    deadline = time.time() + timeout
    for name, spec in server_specs(root, prefect_port, mlflow_port).items():
        if name not in urls:
            continue
        while not healthy(spec["health"]):
            if time.time() > deadline:
                stop(root)
                raise AslfsError(f"{name} did not become healthy within {timeout:.0f} s; see {state_dir / (name + '.log')}")
            time.sleep(0.5)
    return urls


def status(root: str | Path = ".") -> dict[str, dict]:
    root = Path(root).resolve()
    out = {}
    for f in sorted((root / ".servers").glob("*.json")):
        info = json.loads(f.read_text())
        try:
            os.kill(info["pid"], 0)
            info["running"] = True
        except OSError:
            info["running"] = False
        out[f.stem] = info
    return out


def stop(root: str | Path = ".", grace: float = 10.0) -> list[str]:
    """Terminate every server started from ``root`` (process groups); returns the names stopped."""
    root = Path(root).resolve()
    stopped = []
    for name, info in status(root).items():
        pid = info["pid"]
        if info["running"]:
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                pass
            deadline = time.time() + grace
            while time.time() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                try:  # reap if it is our child
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.2)
            else:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            stopped.append(name)
        (root / ".servers" / f"{name}.json").unlink(missing_ok=True)
    return stopped


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class PrefectForRun:
    """Context manager: a Prefect server on a free 127.0.0.1 port for one pipeline run, unless ``PREFECT_API_URL`` is
    already set. Stage processes then share it instead of each starting a temporary server (about 9 s each)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.url: str | None = None
        self._started = False

    def __enter__(self) -> "PrefectForRun":
        if os.environ.get("PREFECT_API_URL"):
            self.url = os.environ["PREFECT_API_URL"]
            return self
        try:
            urls = start(self.root, prefect_port=free_port(), which=("prefect",), timeout=60)
        except AslfsError as err:  # fall back to Prefect's temporary per-process servers
            print(f"note: no shared Prefect server ({err}); stages use temporary servers", file=sys.stderr)
            return self
        self._started = True
        self.url = urls["prefect"] + "/api"
        return self

    def __exit__(self, *exc) -> None:
        if self._started:
            stop(self.root)
