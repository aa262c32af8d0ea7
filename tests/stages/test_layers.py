"""The layering: the library never imports the entry points, and every stage is declared once and reachable the
three ways (``python -m stages.<name>`` as dvc.yaml runs it, ``aslfs <name>``, the declaration itself)."""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_library_never_imports_stages_or_flows():
    offenders = []
    for path in sorted((ROOT / "aslfs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                    "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                names = [str(node.args[0].value)]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                          if n.split(".")[0] in ("stages", "flows")]
    assert offenders == []


def test_every_dvc_stage_runs_a_declared_stage_with_dvc_yaml_defaults():
    from stages.cli import build_parser, load_stages

    declared = {s.name: s for s in load_stages()}
    assert list(declared) == ["synth", "select", "normalize", "folds", "train", "oof", "export", "evaluate"]
    parser = build_parser()
    for name, spec in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        cmd = spec.get("cmd") or spec["do"]["cmd"]
        module = cmd.split()[2]
        assert module.startswith("stages.") and module.split(".")[1] in declared, cmd
    # defaults of the command line are the paths of dvc.yaml
    args = parser.parse_args(["train", "1", "2", "7"])
    assert (args.data_dir, args.folds_csv, args.out_dir) == ("data/normalized", "data/folds.csv", None)
    from stages.train import default_out_dir
    assert default_out_dir(1, 2, 7) == "models/round1/fold2" and default_out_dir(2, 0, 7) == "models/round2/seed7"
    args = parser.parse_args(["evaluate", "artifacts/submission", "data/selected"])
    assert (args.metrics, args.out_dir, args.registry) == ("artifacts/metrics/evaluate.json", "artifacts/evaluate",
                                                           "artifacts/registry.json")
    assert not args.no_track  # evaluate tracks by default, from the CLI as from dvc.yaml


def test_oof_expands_run_folders_from_the_cli(tmp_path, capsys):
    """``aslfs oof ... models/round1`` reads the runs inside the folder, as the stage does in dvc.yaml."""
    from stages.cli import main

    (tmp_path / "params.yaml").write_text("")
    (tmp_path / "round1").mkdir()
    code = main(["oof", str(tmp_path / "norm"), str(tmp_path / "folds.csv"), str(tmp_path / "oof.csv"),
                 str(tmp_path / "round1"), "--params", str(tmp_path / "params.yaml")])
    assert code == 2 and "no training run here" in capsys.readouterr().err


@pytest.mark.parametrize("argv", (["select", "RAW", "OUT"], ["train", "1", "0", "1", "D", "F", "OUT", "--no-track"]))
def test_a_mistyped_params_path_fails_before_starting(argv, tmp_path, capsys):
    from stages.cli import main

    missing = tmp_path / "parms.yaml"
    out = tmp_path / "out"
    argv = [a.replace("OUT", str(out)) for a in argv]
    assert main([*argv, "--params", str(missing)]) == 2
    assert f"aslfs {argv[0]}: error: {missing}: parameter file not found" in capsys.readouterr().err
    assert not out.exists()


def test_demo_refuses_another_profile(tmp_path, capsys):
    from aslfs.profiles import write_params
    from stages.cli import main

    write_params(tmp_path / "params.yaml", "kaggle-1st")
    assert main(["demo", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds profile 'kaggle-1st', not 'demo'" in err[0] and "--profile kaggle-1st" in err[0]


def test_no_function_of_the_code_is_over_80_lines():
    """Each function does one job that reads on one screen (docstring included): the long ones (training's
    train_model at 168 lines, greedy decoding at 105, the synthetic sequence at 113) were split into named steps."""
    long = []
    for package in ("aslfs", "stages", "flows"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 80:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert long == []
