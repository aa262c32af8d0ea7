import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
from aslfs import env  # noqa: E402

env.setup()


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
