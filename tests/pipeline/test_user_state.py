"""The README's two commands pass in either order: no test depends on what a user's run left in the checkout."""

import os
import subprocess
from pathlib import Path

from aslfs.profiles import params_yaml
from aslfs.tracking import project_root, tracking_uri
from tests.pipeline.conftest import ROOT, copy_checkout


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def test_copy_checkout_leaves_out_a_users_pipeline_state(tmp_path):
    src = tmp_path / "user-checkout"
    (src / "aslfs").mkdir(parents=True)
    (src / "aslfs" / "mod.py").write_text("X = 1\n")
    (src / ".gitignore").write_text("/data/\n")
    (src / "params.yaml").write_text(params_yaml("demo"))
    _git(src, "init", "-q")
    _git(src, "add", ".")
    _git(src, "commit", "-q", "-m", "init")
    # what `make demo` then `aslfs profile kaggle-1st` leave: a staged dvc.lock, a rewritten params.yaml, data/
    (src / "dvc.lock").write_text("schema: '2.0'\nstages:\n  synth:\n    cmd: x\n")
    _git(src, "add", "dvc.lock")
    (src / "params.yaml").write_text(params_yaml("kaggle-1st"))
    (src / "data").mkdir()
    (src / "data" / "big.npy").write_bytes(b"0" * 10)
    (src / "notes.txt").write_text("untracked, not ignored\n")

    dst = copy_checkout(tmp_path / "copy", src)

    assert not (dst / "dvc.lock").exists()
    assert (dst / "params.yaml").read_text() == params_yaml("demo")
    assert not (dst / "data").exists()
    assert (dst / "aslfs" / "mod.py").read_text() == "X = 1\n" and (dst / "notes.txt").is_file()


def test_tests_track_outside_the_checkout():
    """A user's ``mlflow.db`` (runs, registry versions, the champion alias) is never read or written by the tests."""
    assert ROOT not in project_root().parents and project_root() != ROOT
    assert str(ROOT) not in tracking_uri()
