"""The GPU training benchmark's CPU smoke mode (``--steps 2 --batch 2``) and its FLOP and GPU-hour arithmetic."""

import pytest

from benchmarks import gpu_train


def test_recipe_gpu_hours():
    # 120k sequences: round 1 = 4 x 300 x 90k = 108M samples, round 2 = 2 x 400 x 120k = 96M; at 1000 samples/s
    hours = gpu_train.recipe_gpu_hours(1000.0, 1, 120_000)
    assert hours["round1"] == pytest.approx(30.0) and hours["round2"] == pytest.approx(26.7, abs=0.05)
    assert gpu_train.recipe_gpu_hours(2000.0, 2, 120_000)["total"] == hours["total"]  # GPU-hours, not wall hours
    # the H200 figures of BENCHMARKS.md: round 2 at 1,031 samples/s, round 1 at 2,167
    split = gpu_train.recipe_gpu_hours(1031.09, 1, 120_000, round1_samples_per_s=2166.69)
    assert (split["round1"], split["round2"], split["total"]) == (13.8, 25.9, 39.7)


def test_cpu_smoke(tmp_path):
    report = gpu_train.main(["--preset", "tiny", "--frames", "16", "--steps", "2", "--batch", "2", "--warmup", "1",
                             "--dtype", "float32", "--out", str(tmp_path / "r.json")])
    assert report["devices"] == 1 and report["samples_per_s"] > 0 and report["step_median_s"] > 0
    assert 0 < report["mfu"] < 1 and report["train_gflops_per_sample"] > 0
    assert report["recipe_gpu_hours"]["total"] > 0 and (tmp_path / "r.json").is_file()
