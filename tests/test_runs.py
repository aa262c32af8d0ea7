"""Training runs (aslfs.runs): one expansion of run arguments for OOF, export and evaluate, the run's files and
facts, and refusals of what is not a run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from aslfs.errors import DataError
from aslfs.runs import HISTORY_FILE, METRICS_FILE, MODEL_FILE, Run, expand_runs


def _run(folder, fold=None, history=True):
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(b"")
    if fold is not None:
        (folder / METRICS_FILE).write_text(json.dumps({"fold": fold}))
    if history:
        pd.DataFrame({"epoch": [1], "loss": [1.5]}).to_csv(folder / HISTORY_FILE, index=False)
    return folder


def test_expand_runs_takes_run_folders_folders_of_them_and_keras_files(tmp_path):
    seeds = tmp_path / "round2"
    b, a = _run(seeds / "seed_b", 0), _run(seeds / "seed_a", 1)
    (seeds / "notes").mkdir()  # a sub-folder without a model is not a run
    single = _run(tmp_path / "single", 2)
    imported = tmp_path / "imported.keras"
    imported.write_bytes(b"")
    runs = expand_runs([single, seeds, imported, str(a)])  # a run named twice counts once
    assert [r.path for r in runs] == [single, a, b, imported]
    assert [r.name for r in runs] == ["single", "seed_a", "seed_b", "imported"]
    assert [r.model_file for r in runs] == [single / MODEL_FILE, a / MODEL_FILE, b / MODEL_FILE, imported]
    assert [r.fold for r in runs] == [2, 1, 0, None]
    assert runs[-1].standalone and runs[-1].history() is None and runs[-1].metrics() == {}
    assert runs[1].history()["loss"].tolist() == [1.5]


@pytest.mark.parametrize("case", ["empty", "missing", "not_a_model", "runs_deeper"])
def test_expand_runs_refuses_what_holds_no_run_with_one_line(tmp_path, case):
    path = tmp_path / "x"
    expected = {
        "empty": f"{path}: no training run here (no model.keras in it or in its sub-folders)",
        "missing": f"{path}: not found (expected a run folder with model.keras, a folder of run folders or a .keras "
                   "file)",
        "not_a_model": f"{path}: not a run folder or a .keras model file",
        "runs_deeper": f"{path}: no training run here (no model.keras in it or in its sub-folders)",
    }[case]
    if case == "empty":
        path.mkdir()
    elif case == "not_a_model":
        path.write_text("x")
    elif case == "runs_deeper":
        _run(path / "round2" / "seed0")
    with pytest.raises(DataError) as info:
        expand_runs([path])
    assert str(info.value) == expected


def test_run_metrics_are_checked(tmp_path):
    run = Run(_run(tmp_path / "r"))
    assert run.metrics() == {} and run.fold is None
    with pytest.raises(DataError, match=r"/r: not a training output \(no metrics.json\)"):
        run.metrics(required=True)
    (run.path / METRICS_FILE).write_text("{oops")
    with pytest.raises(DataError, match=r"metrics.json: not valid JSON"):
        run.metrics()


def test_missing_model_is_one_line(tmp_path):
    with pytest.raises(DataError) as info:
        Run(tmp_path / "gone.keras").load_model()
    assert str(info.value) == f"{tmp_path / 'gone.keras'}: trained model not found"
