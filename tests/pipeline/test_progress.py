"""The progress view of `aslfs demo`: what a person sees while the stages of a level run side by side."""

from aslfs.pipeline import ProgressView, thread_env


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _view(every=30.0):
    clock, out = FakeClock(), []
    planned = [["synth"], ["train1@1", "train1@2"], ["oof"], ["train2@1", "train2@2"], ["export"]]
    epochs = {"train1@1": 4, "train1@2": 4, "train2@1": 10, "train2@2": 10}
    return ProgressView(planned, epochs, every=every, write=out.append, clock=clock), clock, out


def _epoch(view, clock, address, k, n, seconds):
    view.line(address, f"Epoch {k}/{n}")
    clock.now += seconds
    view.line(address, f"80/80 - {int(seconds)}s - 150ms/step - ce: 1.6 - loss: 2.5")


def test_epochs_give_time_left_per_stage_and_for_the_pipeline():
    view, clock, out = _view(every=0.0)
    view.skipped(["synth"])
    view.started("train1@1")
    view.started("train1@2")
    _epoch(view, clock, "train1@1", 1, 4, 40)  # the first epoch compiles: slower, and gives no estimate
    assert out[-1].endswith("train1@1   epoch 1/4"), out[-1]
    _epoch(view, clock, "train1@1", 2, 4, 10)
    # 2 epochs left at 10 s; the pipeline: this level (train1@2 has not finished an epoch: 4 at round 1's 10 s,
    # 40 s) + round 2, 10 epochs at round 1's rate (100 s)
    assert out[-1].endswith("train1@1   epoch 2/4, 0:20 left (pipeline ≈ 2:20 left)"), out[-1]
    assert out[0].endswith("up to date: synth")
    for address in ("train1@1", "train1@2"):
        view.finished(address, 90.0)
    view.started("train2@1")
    view.started("train2@2")
    _epoch(view, clock, "train2@1", 1, 10, 60)  # round 2, first epochs: at round 1's rate, train2@2 10 x 10 s
    assert out[-1].endswith("train2@1   epoch 1/10 (pipeline ≈ 1:40 left)"), out[-1]
    assert out[1].endswith("train1@1   started") and out[1].startswith("[  0:00]")


def test_routine_lines_stay_in_the_log_and_results_reach_the_console():
    view, clock, out = _view()
    view.started("train1@1")
    for line in ("Running stage 'train1@1':", "> python -m stages.train 1 1 1 data/normalized",
                 "E0000 00:00:1796363712.397614   12937 util.cc:131] oneDNN supports DT_BOOL only on platforms with "
                 "AVX-512. Falling back to the default Eigen-based implementation if present.",
                 "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", "Updating lock file 'dvc.lock'", "",
                 "Epoch 1/4"):
        view.line("train1@1", line)
    assert out == ["[  0:00] train1@1   started"]
    view.line("train1@1", "05:56:49.590 | INFO    | Flow run 'notorious-chupacabra' - epoch 6: score 0.1152 cer 0.9")
    view.line("train1@1", "05:56:49.590 | WARNING | Flow run 'notorious-chupacabra' - something to look at")
    view.line("train1@1", "round 1 fold 1: score 0.1152  cer 0.9093  (6 epochs, seed 1) -> models/round1/fold1")
    assert out[1].endswith("train1@1   epoch 6: score 0.1152 cer 0.9")
    assert out[2].endswith("train1@1   WARNING: something to look at")
    assert out[3].endswith("round 1 fold 1: score 0.1152  cer 0.9093  (6 epochs, seed 1) -> models/round1/fold1")
    clock.now += 75
    view.finished("train1@1", 75.0)
    assert out[-1] == "[  1:15] train1@1   done in 1:15"


def test_epoch_lines_are_throttled_but_the_last_epoch_is_always_shown():
    view, clock, out = _view(every=30.0)
    view.started("train2@1")
    for k in range(1, 11):
        _epoch(view, clock, "train2@1", k, 10, 12)
    epochs = [line.split("train2@1")[1].split(",")[0].strip() for line in out if "epoch" in line]
    assert epochs == ["epoch 1/10", "epoch 4/10", "epoch 7/10", "epoch 10/10"]
    assert "left" not in out[1] and ", 1:12 left" in out[2]  # epoch 1: no estimate yet; epoch 4: 6 more at 12 s
    assert ", 0:00 left" in out[-1]


def test_threads_are_divided_between_concurrent_stages_and_user_values_kept():
    env = thread_env({}, jobs=2, cpus=2)
    assert env["TF_NUM_INTRAOP_THREADS"] == "1" and env["OMP_NUM_THREADS"] == "1"
    assert thread_env({}, jobs=3, cpus=2)["TF_NUM_INTRAOP_THREADS"] == "1"
    assert thread_env({}, jobs=1, cpus=8)["TF_NUM_INTRAOP_THREADS"] == "8"
    assert thread_env({"TF_NUM_INTRAOP_THREADS": "5"}, jobs=2, cpus=2)["TF_NUM_INTRAOP_THREADS"] == "5"
