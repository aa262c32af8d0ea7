"""MLflow's scoring server for the pyfunc model (``aslfs serve``).

The server is ``python -m mlflow models serve --env-manager local`` run by the current interpreter, with that
interpreter's ``bin`` folder first on ``PATH`` (MLflow starts ``uvicorn`` by name), so it works without an activated
virtual environment. The model URI is resolved against the project's store (:func:`aslfs.tracking.tracking_uri`).
Requests: ``POST /invocations`` with ``{"inputs": frames}`` (one sequence) or ``{"inputs": [frames, ...]}`` (a batch,
lengths may differ); see :mod:`aslfs.serving.pyfunc`. ``GET /ping`` answers once the model is loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aslfs.errors import DataError

HOST = "127.0.0.1"


def serve_command(model_uri: str, port: int, host: str = HOST, workers: int = 1) -> tuple[list[str], dict[str, str]]:
    """The scoring server's argv and environment (the current one, plus the store URIs and the interpreter's bin
    folder first on ``PATH``)."""
    from aslfs import tracking

    uri = tracking.tracking_uri()
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": os.environ.get("MLFLOW_REGISTRY_URI", uri),
           "PATH": bin_dir + (os.pathsep + path if path else "")}
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "--model-uri", str(model_uri), "--env-manager", "local",
            "--host", host, "--port", str(port), "--workers", str(workers)]
    return argv, env


def check_model(model_uri: str) -> None:
    """Fail in one line when ``model_uri`` does not name a pyfunc model in the store (before starting a server)."""
    import mlflow

    from aslfs import registry

    registry.client()  # sets the store URIs; an unreachable tracking server fails here
    try:
        info = mlflow.models.get_model_info(model_uri)
    except Exception as err:
        raise DataError(f"{model_uri}: cannot load the model ({str(err).splitlines()[0]})") from None
    if "python_function" not in info.flavors:
        raise DataError(f"{model_uri}: not a pyfunc model (flavours: {', '.join(sorted(info.flavors))})")


def prepare(model_uri: str, port: int, host: str = HOST, workers: int = 1) -> tuple[list[str], dict[str, str]]:
    """Check the arguments and the model (one-line errors), then return the server's argv and environment."""
    from aslfs import env

    env.setup()  # telemetry off, quiet TensorFlow: the server inherits the environment
    if not 0 < port < 65536:
        raise DataError(f"--port {port}: not a TCP port")
    if workers < 1:
        raise DataError(f"--workers {workers}: must be at least 1")
    check_model(model_uri)
    return serve_command(model_uri, port, host, workers)


def exec_server(argv: list[str], environ: dict[str, str]) -> None:
    """Replace the current process by the scoring server (signals then reach it directly; returns only on error)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, environ)
