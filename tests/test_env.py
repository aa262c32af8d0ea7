"""Entry points keep TensorFlow's native start-up lines off the console, and real errors on it."""

import subprocess
import sys

from aslfs.env import keep_native_line

CUDA_STUB = ("I0000 00:00:1796341474.822019    4781 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
             "GPU will not be used.")
CU_INIT = ("E0000 00:00:1796341482.082432    4781 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
           "Failed call to cuInit: UNKNOWN ERROR (303)")


def test_known_start_up_lines_are_dropped_and_others_kept():
    assert not keep_native_line("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                                nvidia_driver=False)
    assert not keep_native_line(CUDA_STUB, nvidia_driver=False)
    assert not keep_native_line(CU_INIT, nvidia_driver=False)
    assert keep_native_line(CU_INIT, nvidia_driver=True)  # with a driver installed a failing cuInit is a real problem
    assert keep_native_line("E0000 00:00:1.0  1 op_kernel.cc:1] Resource exhausted: OOM", nvidia_driver=False)
    assert not keep_native_line("   ", nvidia_driver=False)


def test_a_cli_command_prints_no_native_start_up_noise():
    """``aslfs model`` imports TensorFlow and builds a model: stderr stays empty (before: 5 lines of absl/CUDA)."""
    proc = subprocess.run([sys.executable, "-m", "stages.cli", "model", "--preset", "tiny"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "trainable parameters: 80" in proc.stdout
    assert proc.stderr == ""


def test_native_errors_after_start_up_still_reach_stderr():
    code = ("from aslfs import env; env.setup(); import os, tensorflow as tf; "
            "os.write(2, b'E0000 00:00:1.0 1 x.cc:1] a real native error\\n'); print(tf.reduce_sum(tf.ones(3)).numpy())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "3.0"
    assert proc.stderr.strip() == "E0000 00:00:1.0 1 x.cc:1] a real native error"


FLOW_SCRIPT = """
import sys
from aslfs import env
env.setup()
from aslfs.errors import AslfsError
from stages.stage import run_as_flow

def ok():
    print("progress line from the flow")
    return 7

def bad():
    raise AslfsError("data/raw: no such folder")

assert run_as_flow("ok", ok) == 7
try:
    run_as_flow("bad", bad)
except AslfsError as err:
    print("error:", err)
"""


def test_a_stage_flow_prints_its_own_lines_and_failures_but_not_prefects_routine(tmp_path):
    """A stage run as a Prefect flow used to print five routine lines per run (temporary server start with its
    help link, 'Beginning flow run', 'View at <url>', 'Finished in state Completed()'); what the flow prints and a
    failed state still show."""
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    proc = subprocess.run([sys.executable, "-c", FLOW_SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=environ)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "progress line from the flow" in out
    assert "Failed('data/raw: no such folder')" in out and "error: data/raw: no such folder" in out
    for routine in ("Beginning flow run", "View at ", "Finished in state Completed", "Starting temporary server",
                    "prefect.io/docs"):
        assert routine not in out, routine


FIRST_STEP_SCRIPT = """
import os
from aslfs import env
env.setup()
import keras, numpy as np
from keras import ops
from aslfs.training.callbacks import FirstStepNotices
from aslfs.training.losses import ctc_loss

class Writes(keras.callbacks.Callback):  # native lines during the first step: a known notice and a real error
    written = False

    def on_train_batch_begin(self, batch, logs=None):
        if not self.written:
            self.written = True
            os.write(2, b"E0000 00:00:1.0 1 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. "
                        b"Falling back to the default Eigen-based implementation if present.\\n")
            os.write(2, b"E0000 00:00:1.0 1 x.cc:1] a real native error\\n")

def loss(y_true, y_pred):  # the training's CTC term (TensorFlow's ctc_loss_dense: the real DT_BOOL notice)
    return ctc_loss(y_true, y_pred, ops.ones(ops.shape(y_pred)[:2], "bool"), blank_id=63)

rng = np.random.default_rng(0)
x = rng.normal(size=(8, 24, 6)).astype("float32")
y = np.full((8, 33), 60, "int32"); y[:, :5] = rng.integers(0, 59, (8, 5)); y[:, 5] = 59
model = keras.Sequential([keras.Input((24, 6)), keras.layers.Dense(64)])
model.compile(optimizer="adam", loss=loss, jit_compile=False)
notices = FirstStepNotices()
try:
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[notices, Writes()])
finally:
    notices.close()
print("trained")
"""


def test_a_trainings_first_step_notices_stay_off_the_console_and_real_errors_do_not():
    proc = subprocess.run([sys.executable, "-c", FIRST_STEP_SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "trained"
    assert proc.stderr.strip() == "E0000 00:00:1.0 1 x.cc:1] a real native error"
