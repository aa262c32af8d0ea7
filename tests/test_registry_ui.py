"""The registry as a user sees it: ``scripts/registry_screenshots.py`` opens the MLflow UI in headless Chromium on a
store holding one evaluated version, checks that the rendered pages show the model card, the signature's one input
and one output and the evaluation, and writes the two screenshots.

``make test`` installs Chromium where it can (Debian, as root); elsewhere the test is skipped with that reason.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from export.toy_tflite import write_probe_submission

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                                reason="no Chromium on PATH (apt-get install chromium; make test installs it as root)")


def _script():
    spec = importlib.util.spec_from_file_location("registry_screenshots", ROOT / "scripts" / "registry_screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_and_version_pages_show_what_the_registry_explains(tmp_path, monkeypatch, capsys):
    from aslfs import registry, tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ASLFS_ROOT", str(tmp_path))
    monkeypatch.delenv("ASLFS_PIPELINE_RUN", raising=False)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    submission = write_probe_submission(tmp_path / "sub")
    with tracking.start_run("export", kind="export"):
        version = registry.register_submission(submission, facts={"head": "ctc", "members": ["seed1", "seed2"]})
    with tracking.start_run("evaluate", kind="evaluate") as run:
        run.log_metrics({"score": 0.9219, "cer": 0.078})
        registry.promote_if_better(version.version, 0.9219)

    out = tmp_path / "shots"
    assert _script().main(["--root", str(tmp_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in printed] == [str(out / "model.png"), str(out / "version-1.png")]
    for name in ("model.png", "version-1.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / name).stat().st_size > 50_000


def test_a_page_missing_what_it_should_show_is_one_line(tmp_path, monkeypatch):
    """A version registered without a card (as before format 3): the check names what the page lacks."""
    from mlflow.tracking import MlflowClient

    from aslfs import registry, tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ASLFS_ROOT", str(tmp_path))
    monkeypatch.delenv("ASLFS_PIPELINE_RUN", raising=False)
    with tracking.start_run("export", kind="export"):
        version = registry.register_submission(write_probe_submission(tmp_path / "sub"))
    MlflowClient().update_model_version("asl-fingerspelling", version.version, description="")
    with pytest.raises(SystemExit, match=r"^registry_screenshots: http://127\.0\.0\.1:\d+/#/models/asl-fingerspelling"
                                         r"/versions/1 does not show 'The file' \(rendered \d+ characters\)$"):
        _script().main(["--root", str(tmp_path), "--out", str(tmp_path / "shots")])
