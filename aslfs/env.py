"""Process environment for the project's entry points (CLI, DVC stages, Prefect flows).

Telemetry is switched off (the project runs offline) and noisy framework logs are quietened. TensorFlow's oneDNN
kernels stay on (its default): on CPU they make the round-2 training step 1.8x faster (3.5 s vs 6.3 s, see
BENCHMARKS.md); results differ from oneDNN-off runs only by floating-point rounding. Only entry points call
:func:`setup`; library modules never touch the environment.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile

_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "true",
    # a stage run on its own starts Prefect's temporary server; Prefect gives it 20 s, which a busy 2-core machine
    # can exceed on a first start (new database), failing the stage before any work
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "KERAS_BACKEND": "tensorflow",
}


def setup() -> None:
    """Set the project's environment defaults without overriding what the user exported, and have TensorFlow's first
    import drop its known-harmless native start-up lines (:class:`_QuietTensorFlowImport`)."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    # MLflow announces creating and migrating a new sqlite store at INFO, once per store; nothing to act on
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


#: Prefect's routine console lines: one set per flow run (start, UI address, a completed state) and the temporary
#: server's start and stop. They still reach the Prefect UI; failed or crashed states, warnings, errors and what the
#: flows themselves log stay on the console.
_PREFECT_ROUTINE = re.compile(
    r"(Beginning flow run |Beginning subflow run |View at |Finished in state Completed\(|"
    r"Starting temporary server on |Stopping temporary server on )")


class _PrefectRoutineFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("prefect") and record.levelno <= logging.INFO
                    and _PREFECT_ROUTINE.match(record.getMessage()))


def quiet_prefect_console() -> None:
    """Drop Prefect's routine per-run lines (:data:`_PREFECT_ROUTINE`) from the console handlers. Call it after
    ``prefect`` is imported (its import configures logging and replaces the root handlers); idempotent."""
    import prefect  # noqa: F401  (configures Prefect's logging)

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _PrefectRoutineFilter) for f in handler.filters):
            handler.addFilter(_PrefectRoutineFilter())


#: Lines TensorFlow's native code writes to the process' stderr at import and at its first device query, before its
#: logging is configured (``TF_CPP_MIN_LOG_LEVEL`` does not reach them). They say nothing a user must act on.
_HARMLESS = (
    re.compile(r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"),
    re.compile(r"oneDNN custom operations are on"),
    re.compile(r"This TensorFlow binary is optimized to use available CPU instructions"),
    re.compile(r"To enable the following instructions: .* rebuild TensorFlow"),
    # a training's first step: TensorFlow's own CTC loss (``ctc_loss_dense``, behind ``keras.ops.ctc_loss``) has a
    # boolean op that oneDNN leaves to the default Eigen kernel, as on every CPU without AVX-512
    re.compile(r"oneDNN supports DT_BOOL only on platforms with AVX-512"),
)
#: Harmless only where the machine has no NVIDIA driver at all (no GPU is expected); with a driver, a failing
#: ``cuInit`` is a real problem and stays visible.
_HARMLESS_WITHOUT_DRIVER = (
    re.compile(r"failed call to cuInit"),
    re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory"),
)


def keep_native_line(line: str, *, nvidia_driver: bool) -> bool:
    """Whether a line TensorFlow's native start-up wrote to stderr should reach the user."""
    patterns = _HARMLESS if nvidia_driver else _HARMLESS + _HARMLESS_WITHOUT_DRIVER
    return bool(line.strip()) and not any(p.search(line) for p in patterns)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``tensorflow`` (once) with the process' file descriptor 2 redirected to a temporary file, runs its
    first device query there too, then writes back every captured line that :func:`keep_native_line` keeps. Works at
    the descriptor level because the lines come from C++, not from Python's ``sys.stderr``."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self._inner = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        with native_stderr_filtered():
            self._inner.exec_module(module)
            module.__loader__ = module.__spec__.loader = self._inner  # as if imported without this finder
            module.config.list_physical_devices()  # the first device query logs the cuInit attempt


class native_stderr_filtered(contextlib.ContextDecorator):
    """Within the block, the process' file descriptor 2 goes to a temporary file; at its end (also on an
    exception) every captured line that :func:`keep_native_line` keeps is written back to stderr. For the moments
    TensorFlow's C++ code writes its known-harmless notices (its import, a training's first step); Python's own
    stderr output of the block comes out at its end, unchanged."""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._captured = tempfile.TemporaryFile()
        os.dup2(self._captured.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._captured.seek(0)
        text = self._captured.read().decode(errors="replace")
        self._captured.close()
        driver = os.path.exists("/proc/driver/nvidia/version")
        kept = [line for line in text.splitlines() if keep_native_line(line, nvidia_driver=driver)]
        if kept:
            print("\n".join(kept), file=sys.stderr, flush=True)
        return False
