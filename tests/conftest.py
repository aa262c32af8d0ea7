import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
from aslfs import env  # noqa: E402

env.setup()
