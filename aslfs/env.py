"""Process environment for the project's entry points (CLI, DVC stages, Prefect flows).

Telemetry is switched off (the project runs offline) and noisy framework logs are quietened. TensorFlow's oneDNN
kernels stay on (its default): on CPU they make the round-2 training step 1.8x faster (3.5 s vs 6.3 s, see
BENCHMARKS.md); results differ from oneDNN-off runs only by floating-point rounding. Only entry points call
:func:`setup`; library modules never touch the environment.
"""

from __future__ import annotations

import os

_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "true",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "KERAS_BACKEND": "tensorflow",
}


def setup() -> None:
    """Set the project's environment defaults without overriding what the user exported."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
