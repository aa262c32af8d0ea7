import atexit
import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# No test reads or writes the checkout's own MLflow store (``mlflow.db``, ``mlruns/``: a user's demo runs and registry
# versions live there): the session's default project root and tracking store are a temporary folder. Tests that
# need their own store set both again.
_SESSION_ROOT = tempfile.mkdtemp(prefix="aslfs-test-root-")
atexit.register(shutil.rmtree, _SESSION_ROOT, ignore_errors=True)
os.environ["ASLFS_ROOT"] = _SESSION_ROOT
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_ROOT}/mlflow.db"
from aslfs import env  # noqa: E402

env.setup()

# Prefect configures logging with ``logging.config.dictConfig`` when it is first imported, which closes every handler
# already installed. absl's handler (installed when TensorFlow is imported) then closes the stream it was created with:
# under pytest, the capture stream of whichever test imported TensorFlow first, so a later test's output capture
# failed with "I/O operation on closed file" depending on test order. Importing Prefect first, before any capture of a
# test and before TensorFlow, makes that order irrelevant. (Outside pytest the stream is the process' own stderr,
# which absl never closes.)
import prefect.main  # noqa: E402,F401


def pytest_sessionfinish(session, exitstatus):
    """Stop Prefect's temporary API server (started by in-process flow runs) while pytest's output streams are still
    open: left to its atexit hook, it logs its shutdown to a capture stream pytest has closed by then."""
    import sys

    server = sys.modules.get("prefect.server.api.server")
    if server is None:
        return
    import logging

    logger = logging.getLogger("prefect")  # its console handler may hold a stream of a finished test
    previous, logger.disabled = logger.disabled, True
    try:
        for instance in list(server.SubprocessASGIServer._instances.values()):
            instance.stop()
    finally:
        logger.disabled = previous
