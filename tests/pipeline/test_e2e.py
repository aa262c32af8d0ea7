"""The whole pipeline, CI-sized: `aslfs demo` (dvc repro) on the `ci` profile in a copy of the checkout, then
idempotence (`dvc status` clean, a second `dvc repro` runs nothing)."""

import json
import subprocess
import sys

import pytest

from tests.pipeline.conftest import BIN, copy_checkout, project_env

pytestmark = pytest.mark.slow


def test_ci_profile_end_to_end_and_idempotent(tmp_path):
    root = copy_checkout(tmp_path / "proj")
    env = project_env()
    aslfs = [sys.executable, "-m", "stages.cli"]
    subprocess.run([*aslfs, "profile", "ci"], cwd=root, env=env, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q", "-f"], cwd=root, env=env, check=False)
    demo = subprocess.run([*aslfs, "demo", "--profile", "ci"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    out = demo.stdout
    assert "held-out score" in out and "TFLite model: artifacts/submission/model.tflite" in out
    assert "MLflow model: asl-fingerspelling version" in out
    # the progress view: the two folds, then the two seeds, side by side; routine lines only in the stages' logs
    for stage in ("synth", "train1@1", "train1@2", "oof", "train2@1", "train2@2", "export", "evaluate"):
        assert f"] {stage:<10} started" in out and (root / f"artifacts/logs/{stage}.log").exists(), stage
    for routine in ("Running stage", "Updating lock file", "oneDNN", "XNNPACK", "Epoch 1/"):
        assert routine not in out, routine
    assert "Running stage 'train1@1'" in (root / "artifacts/logs/train1@1.log").read_text()
    lines = out.splitlines()
    started = {s: next(i for i, ln in enumerate(lines) if f"] {s:<10} started" in ln) for s in ("train2@1", "train2@2")}
    finished = {s: next(i for i, ln in enumerate(lines) if f"] {s:<10} done in" in ln) for s in ("train2@1", "train2@2")}
    assert max(started.values()) < min(finished.values()), "the two seeds ran at the same time"

    metrics = json.loads((root / "artifacts/metrics/evaluate.json").read_text())
    assert {"score", "cer", "score_pp"} <= set(metrics)
    assert metrics["sequences"] > 0
    submission = sorted(p.name for p in (root / "artifacts/submission").iterdir())
    assert submission == ["inference_args.json", "model.tflite"]
    assert len(list((root / "models/round2").glob("seed*/model.keras"))) == 2
    assert (root / "data/oof.csv").exists()

    status = subprocess.run([str(BIN / "dvc"), "status", "--json"], cwd=root, env=env, capture_output=True, text=True)
    assert status.stdout.strip() == "{}", status.stdout
    again = subprocess.run([str(BIN / "dvc"), "repro"], cwd=root, env=project_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0
    assert "Running stage" not in again.stdout, again.stdout
    metrics_show = subprocess.run([str(BIN / "dvc"), "metrics", "show", "--json"], cwd=root, env=env,
                                  capture_output=True, text=True)
    assert "evaluate.json" in metrics_show.stdout
