"""Fixtures for pipeline tests: a copy of the project checkout, and a toy DVC project."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


#: Files a user's run rewrites in the checkout: ``dvc repro`` / ``aslfs demo`` write (and git-stage) ``dvc.lock``;
#: ``aslfs profile`` and ``dvc exp run -S`` rewrite ``params.yaml``. A copy made for a test never takes them from the
#: working tree: it has no ``dvc.lock`` (as a fresh clone) and the demo profile's ``params.yaml``.
USER_STATE = ("dvc.lock", "params.yaml")


def copy_checkout(dst: Path, src: Path = ROOT) -> Path:
    """Copy the project's tracked and untracked-not-ignored files (a fresh clone of the working tree), without the
    pipeline state a user's runs leave behind (:data:`USER_STATE`)."""
    from aslfs.profiles import params_yaml

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=src, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        source = src / rel
        if rel not in USER_STATE and source.is_file():
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "params.yaml").write_text(params_yaml("demo"))
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return dst


def project_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("ASLFS_ROOT", None)  # a copied project tracks in its own root, as a user's checkout does
    env.update({"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1", "PYTHONPATH": str(ROOT)})
    env.update(extra or {})
    return env


TOY_DVC = """\
stages:
  make:
    cmd: python -c "import pathlib, yaml; p = yaml.safe_load(open('params.yaml')); pathlib.Path('out').mkdir(exist_ok=True); pathlib.Path('out/a.txt').write_text(str(p['folds']['seed']))"
    params: [folds.seed]
    outs: [out/a.txt]
  fan:
    foreach: ${pipeline.round1_folds}
    do:
      cmd: python -c "import os, pathlib; pathlib.Path('out/b${item}.txt').write_text(pathlib.Path('out/a.txt').read_text() + ' ${item} ' + str(os.getpid()) + ' ' + (os.environ.get('CUDA_VISIBLE_DEVICES') or '-'))"
      deps: [out/a.txt]
      outs: ["out/b${item}.txt"]
  join:
    cmd: python -c "import pathlib; pathlib.Path('out/c.txt').write_text(''.join(pathlib.Path(f'out/b{i}.txt').read_text().split()[0] for i in (0, 1, 2)))"
    deps: [out/b0.txt, out/b1.txt, out/b2.txt]
    outs: [out/c.txt]
"""


@pytest.fixture
def toy_project(tmp_path):
    """A small DVC project with a fan-out level (three independent stages) — the shape of the folds/seeds levels.
    Each fan-out stage writes ``<a> <item> <pid> <CUDA_VISIBLE_DEVICES or ->`` to ``out/b<item>.txt``."""
    root = tmp_path / "toy"
    root.mkdir()
    (root / "dvc.yaml").write_text(TOY_DVC)
    # valid aslfs parameters (the flow validates params.yaml): folds.seed feeds the first stage, round1_folds the fan-out
    (root / "params.yaml").write_text("folds:\n  seed: 7\npipeline:\n  round1_folds: [0, 1, 2]\n")
    env = project_env()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=root, check=True, env=env)
    return root
