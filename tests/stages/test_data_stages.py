"""The data stages end to end on a tiny corpus: dvc.yaml wiring, the stage entry points and the CLI commands."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stages import cli
from aslfs.data.normalize import normalize_np
from aslfs.data.store import SequenceStore
from tests.helpers import demo_params_file, random_dataset, selected

ROOT = Path(__file__).resolve().parents[2]
PARAMS = """
data: {source: raw, raw_dir: RAW}
select: {on_invalid: skip, workers: 1, max_phrase_len: 31}
folds: {n_folds: 2, seed: 3}
"""


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    """One temporary Prefect server for this module, stopped while pytest still captures its log lines."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    meta, arrays = random_dataset(root / "raw", n_sequences=16, sequences_per_file=6, participants=5, seed=11)
    (root / "params.yaml").write_text(PARAMS.replace("RAW", str(root / "raw")))
    return root, meta, arrays


def test_dvc_yaml_wiring():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((demo_params_file()).read_text())
    stages = spec["stages"]
    assert list(stages)[:4] == ["synth", "select", "normalize", "folds"]
    assert stages["synth"]["cmd"] == "python -m stages.synth data/raw"
    assert stages["select"]["cmd"] == "python -m stages.select ${data.raw_dir} data/selected"
    assert "${data.raw_dir}" in stages["select"]["deps"]
    assert stages["normalize"]["cmd"] == "python -m stages.normalize data/selected data/normalized"
    assert stages["folds"]["cmd"] == "python -m stages.folds data/selected data/folds.csv"
    assert "data/selected" in stages["normalize"]["deps"] and "data/selected/index.parquet" in stages["folds"]["deps"]
    for name in ("select", "normalize", "folds"):
        deps = stages[name]["deps"]
        assert f"stages/{name}.py" in deps and f"aslfs/data/{name}.py" in deps
        for dep in deps:
            if not dep.startswith(("data/", "${")):
                assert (ROOT / dep).exists(), f"{name}: dependency {dep} does not exist"
        for key in stages[name].get("params", []):
            node = params
            for part in key.split("."):
                assert part in node, f"{name}: param {key} not in params.yaml"
                node = node[part]
    assert "select.workers" not in stages["select"]["params"], "workers never changes the output"
    outs = {next(iter(o)) if isinstance(o, dict) else o: o for s in stages.values() for o in s.get("outs", [])}
    for big in ("data/raw", "data/selected", "data/normalized"):
        assert outs[big][big]["cache"] is False
    assert outs["data/folds.csv"] == "data/folds.csv"


def test_stage_entry_points(raw, capsys):
    from stages.folds import folds
    from stages.normalize import normalize
    from stages.select import select

    root, meta, arrays = raw
    p = str(root / "params.yaml")
    assert select.main([str(root / "raw"), str(root / "sel"), "--params", p]) == 0
    assert normalize.main([str(root / "sel"), str(root / "norm")]) == 0
    assert folds.main([str(root / "sel"), str(root / "folds.csv"), "--params", p]) == 0
    out = capsys.readouterr().out
    assert "selected 16 sequences" in out and "normalised 16 sequences" in out and "2 folds of 16" in out

    sel, norm = SequenceStore(root / "sel"), SequenceStore(root / "norm")
    for i, sid in enumerate(sel.index.sequence_id):
        np.testing.assert_array_equal(sel.load(i), selected(arrays[sid]))
        np.testing.assert_array_equal(norm.load(i), normalize_np(selected(arrays[sid])))
    folds = pd.read_csv(root / "folds.csv")
    assert list(folds.columns) == ["sequence_id", "participant_id", "fold", "is_supplemental"]
    assert folds.sequence_id.tolist() == meta.sequence_id.tolist()
    assert set(folds.fold) == {0, 1} and (folds.groupby("participant_id").fold.nunique() == 1).all()

    # a user error: one line on stderr, exit status 2, the previous output untouched
    rc = select.main([str(root / "nope"), str(root / "sel"), "--params", p])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("stage select: error: ") and "nope" in err[-1]
    assert len(SequenceStore(root / "sel")) == 16


def test_cli_commands(raw, tmp_path, capsys):
    root, meta, _ = raw
    p = str(root / "params.yaml")
    assert cli.main(["select", str(root / "raw"), str(tmp_path / "sel"), "--params", p, "--workers", "1"]) == 0
    assert cli.main(["normalize", str(tmp_path / "sel"), str(tmp_path / "norm")]) == 0
    assert cli.main(["folds", str(tmp_path / "sel"), str(tmp_path / "f.csv"), "--params", p, "--n-folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "selected 16 sequences" in out and "fold 2:" in out
    assert len(SequenceStore(tmp_path / "norm")) == 16
    assert sorted(pd.read_csv(tmp_path / "f.csv").fold.unique()) == [0, 1, 2]
    assert cli.main(["select", str(tmp_path / "nope"), str(tmp_path / "x"), "--params", p]) == 2
    assert "aslfs select: error:" in capsys.readouterr().err
