"""The export entry points: ``aslfs export --untrained`` (size/speed check before training) and the DVC stage on
saved ``.keras`` members with registration in a temporary MLflow store."""

from __future__ import annotations

import json

import numpy as np


def test_cli_untrained_export(tmp_path, capsys):
    from stages.cli import main
    from aslfs.export.runtime import TFLiteRecognizer

    out = tmp_path / "sub"
    (tmp_path / "params.yaml").write_text("")  # every section takes its defaults
    code = main(["export", "--preset", "tiny", "--ensemble", "2", "--untrained", "--force-steps", "33", str(out),
                 "--params", str(tmp_path / "params.yaml"), "--report", str(tmp_path / "report.json"),
                 "--no-diagnostics"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "model.tflite" in printed and "MB" in printed
    assert sorted(p.name for p in out.iterdir()) == ["inference_args.json", "model.tflite"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["members"] == 2 and report["info"]["force_steps"] == 33 and "registry" not in report["info"]
    assert report["signatures"] == ["serving_default"] and report["info"]["confidence_threshold"] == 0.0
    assert report["bytes"] == (out / "model.tflite").stat().st_size
    rows = TFLiteRecognizer(out / "model.tflite").logits(np.random.default_rng(0).random((50, 390), np.float32))
    assert rows.shape[1] == 63 and rows.shape[0] <= 32


def test_cli_errors_are_one_line(tmp_path, capsys):
    from stages.cli import main

    assert main(["export", str(tmp_path / "x"), "--untrained"]) == 2
    assert "--preset" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "x"), str(tmp_path / "missing")]) == 2
    assert "model.keras" in capsys.readouterr().err


def test_stage_exports_saved_members_and_registers(members, sequences, recognizer, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from aslfs.export.runtime import TFLiteRecognizer
    from stages.export import export

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ASLFS_ROOT", str(tmp_path))
    monkeypatch.delenv("ASLFS_PIPELINE_RUN", raising=False)
    for i, member in enumerate(members):  # models/round2/seed{i}/model.keras, as the train stage writes them
        run = tmp_path / "models" / "round2" / f"seed{i}"
        run.mkdir(parents=True)
        member.save(run / "model.keras")
    (tmp_path / "params.yaml").write_text("export:\n  register_model: true\n")
    export.call([tmp_path / "sub", tmp_path / "models" / "round2", "--params", tmp_path / "params.yaml",
                 "--report", tmp_path / "export.json"], flow=True)
    report = json.loads((tmp_path / "export.json").read_text())
    assert [m.split("/")[-1] for m in report["info"]["members"]] == ["seed0", "seed1"]
    assert report["info"]["registry"]["version"] == "1"
    version = MlflowClient().get_model_version("asl-fingerspelling", "1")
    assert version.tags["aslfs.members"] == "2"
    loaded = TFLiteRecognizer(tmp_path / "sub" / "model.tflite")
    for frames in sequences[::4]:  # the reloaded members give the same file behaviour
        np.testing.assert_allclose(loaded.logits(frames), recognizer.logits(frames), atol=1e-6)
