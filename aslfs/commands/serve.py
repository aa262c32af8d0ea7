"""``aslfs serve MODEL_URI``: MLflow's scoring server for a registered or logged model, on 127.0.0.1 by default.

MODEL_URI is an MLflow model URI (``models:/asl-fingerspelling@champion``, ``models:/asl-fingerspelling/3``,
``runs:/<run id>/tflite-model``) in the project's store. The server runs with ``--env-manager local`` on this
interpreter, so no activated virtual environment is needed. ``POST /invocations`` with ``{"inputs": frames}`` (one
sequence [n_frames, 390]) or ``{"inputs": [frames1, frames2, ...]}`` (lengths may differ) answers
``{"predictions": [phrase, ...]}``; malformed input answers HTTP 400 with a one-line message.
"""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("model_uri", metavar="MODEL_URI", help="MLflow model URI, e.g. models:/asl-fingerspelling@champion")
    parser.add_argument("--port", type=int, default=5001, help="TCP port (default 5001)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")


def run(args) -> int:
    from aslfs.serving import server

    argv, environ = server.prepare(args.model_uri, args.port, args.host, args.workers)
    print(f"serving {args.model_uri} on http://{args.host}:{args.port} (POST /invocations; Ctrl-C stops)", flush=True)
    server.exec_server(argv, environ)
    return 0
