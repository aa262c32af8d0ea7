"""The GPU training benchmark's CPU smoke mode (``--steps 2 --batch 2``) and its FLOP and GPU-hour arithmetic."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_train

ROOT = Path(__file__).resolve().parents[2]


def test_recipe_gpu_hours():
    # 120k sequences: round 1 = 4 x 300 x 90k = 108M samples, round 2 = 2 x 400 x 120k = 96M; at 1000 samples/s
    hours = gpu_train.recipe_gpu_hours(1000.0, 1, 120_000)
    assert hours["round1"] == pytest.approx(30.0) and hours["round2"] == pytest.approx(26.7, abs=0.05)
    assert gpu_train.recipe_gpu_hours(2000.0, 2, 120_000)["total"] == hours["total"]  # GPU-hours, not wall hours
    # the H200 figures of BENCHMARKS.md: round 2 at 1,031 samples/s, round 1 at 2,167
    split = gpu_train.recipe_gpu_hours(1031.09, 1, 120_000, round1_samples_per_s=2166.69)
    assert (split["round1"], split["round2"], split["total"]) == (13.8, 25.9, 39.7)


@pytest.mark.jax
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[jax]')")
def test_cpu_smoke(tmp_path):
    # on JAX, the backend the benchmark is for, with the cheapest XLA compilation (a test of the script, not of speed)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "",
           "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_train", "--preset", "tiny", "--frames", "16",
                           "--steps", "2", "--batch", "2", "--warmup", "1", "--dtype", "float32", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["backend"] == "jax" and report["devices"] == 1
    assert report["samples_per_s"] > 0 and report["step_median_s"] > 0
    assert 0 < report["mfu"] < 1 and report["train_gflops_per_sample"] > 0
    assert report["recipe_gpu_hours"]["total"] > 0
