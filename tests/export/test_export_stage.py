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


def test_cli_refuses_a_folder_without_runs_with_one_line(tmp_path, capsys):
    from stages.cli import main

    empty = tmp_path / "models" / "round2"
    empty.mkdir(parents=True)
    assert main(["export", str(tmp_path / "sub"), str(empty)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(f"{empty}: no training run here (no model.keras in it or in its sub-folders)")
    assert not (tmp_path / "sub").exists()


def test_export_and_evaluate_take_the_same_members(members, tmp_path):
    import pandas as pd

    from aslfs.evaluate.curves import training_curves
    from aslfs.export.members import trained_members
    from aslfs.runs import expand_runs

    for i, member in enumerate(reversed(members)):  # saved seed1 first: the order is the folders' names
        run = tmp_path / "round2" / f"seed{1 - i}"
        run.mkdir(parents=True)
        member.save(run / "model.keras")
        pd.DataFrame({"epoch": [1], "loss": [float(1 - i)]}).to_csv(run / "history.csv", index=False)
    members[0].save(tmp_path / "imported.keras")  # e.g. written by aslfs import-checkpoint: no history
    args = [tmp_path / "round2", tmp_path / "imported.keras"]
    loaded, sources = trained_members(args)
    assert sources == [str(tmp_path / "round2" / "seed0"), str(tmp_path / "round2" / "seed1"),
                       str(tmp_path / "imported.keras")]
    assert [m.count_params() for m in loaded] == [m.count_params() for m in (members[0], members[1], members[0])]
    assert [str(r.path) for r in expand_runs(args)] == sources  # evaluate's members (run_evaluation expands so)
    curves = training_curves(expand_runs(args))
    assert curves["run"].tolist() == ["seed0", "seed1"] and curves["loss"].tolist() == [0.0, 1.0]


def test_untrained_export_of_a_preset_without_ctc_head_works_in_a_ctc_profile(tmp_path, capsys, caplog):
    """The demo profile exports the CTC head; an untrained check of a preset without one used to stop with "CTC
    decoding needs members with a CTC head". It now decodes with the head the preset has, and says so."""
    from stages.cli import main

    (tmp_path / "params.yaml").write_text("export:\n  head: ctc\n")
    out = tmp_path / "sub"
    code = main(["export", "--preset", "tiny", "--untrained", "--force-steps", "3", str(out), "--params",
                 str(tmp_path / "params.yaml"), "--report", str(tmp_path / "report.json"), "--no-diagnostics"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "decoding: attention head, exactly 3 step(s) per sequence (forced); at most 3 rows" in printed.out
    assert json.loads((tmp_path / "report.json").read_text())["info"]["head"] == "attention"
    # loading the intermediate SavedModel (saved without gradient functions on purpose) used to log one absl warning
    # per function, eight in the demo's export
    assert not [r for r in caplog.records if "unsaved custom gradients" in r.getMessage()]


def test_output_rows_never_exceed_the_steps_that_ran():
    """One length rule: rows up to the first end id, never more than the steps that ran (force_steps=1 used to
    give 32 rows, 31 of them pad) and never more than 32."""
    from aslfs.export.graph import EnsembleGraph
    from aslfs.export.members import untrained_members

    members = untrained_members("tiny", 1, seed=3)
    frames = np.random.default_rng(1).random((40, 390), np.float32)
    free = EnsembleGraph(members, confidence_threshold=0.0, early_stop=False)
    free_rows = np.asarray(free.serve(frames))
    for steps in (1, 2, 33):
        rows = np.asarray(EnsembleGraph(members, confidence_threshold=0.0, force_steps=steps).serve(frames))
        assert rows.shape[0] <= min(steps, 32)
        # the steps that ran give the same rows as unforced decoding, cut at the same end id
        np.testing.assert_allclose(rows, free_rows[: rows.shape[0]], atol=1e-5)
        assert rows.shape[0] == min(steps, free_rows.shape[0])
