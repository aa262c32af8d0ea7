"""Running the whole pipeline: ``dvc repro`` in the project with the project's environment, then a summary.

``aslfs demo`` (the README's main command, via ``make demo``) calls :func:`run_demo`. DVC runs each stage's ``cmd``
(``python -m stages.<name> ...``) in a shell; the virtual environment's ``bin`` goes first on ``PATH`` so that
``python`` and ``dvc`` are the project's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aslfs.errors import AslfsError


def project_env(root: Path) -> dict[str, str]:
    """The environment stage commands run in: the venv first on PATH, telemetry off, the project root known."""
    from aslfs import env

    env.setup()
    environ = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    environ["PATH"] = bindir + os.pathsep + environ.get("PATH", "")
    environ["ASLFS_ROOT"] = str(root)
    environ.setdefault("PYTHONUNBUFFERED", "1")
    return environ


def dvc(root: Path, *args: str, environ: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "dvc"), *args]
    proc = subprocess.run(cmd, cwd=root, env=environ or project_env(root))
    if check and proc.returncode != 0:
        raise AslfsError(f"`dvc {' '.join(args)}` failed with exit status {proc.returncode} (see the output above)")
    return proc


def read_summary(root: Path) -> dict:
    """Collect the headline results the pipeline wrote (whatever exists)."""
    summary: dict = {}
    metrics = root / "artifacts" / "metrics" / "evaluate.json"
    if metrics.exists():
        summary["metrics"] = json.loads(metrics.read_text())
    tflite = root / "artifacts" / "submission" / "model.tflite"
    if tflite.exists():
        summary["tflite"] = {"path": str(tflite.relative_to(root)), "bytes": tflite.stat().st_size}
    registry = root / "artifacts" / "registry.json"
    if registry.exists():
        summary["registry"] = json.loads(registry.read_text())
    report = root / "data" / "selected" / "report.json"
    if report.exists():
        summary["select"] = json.loads(report.read_text())
    return summary


def format_summary(summary: dict, seconds: float) -> str:
    lines = [f"pipeline finished in {seconds:.0f} s"]
    m = summary.get("metrics")
    if m:
        lines.append(
            "held-out score {score:.4f} (CER {cer:.4f}, after post-processing {score_pp:.4f})".format(
                score=m.get("score", float("nan")), cer=m.get("cer", float("nan")), score_pp=m.get("score_pp", float("nan"))
            )
        )
    t = summary.get("tflite")
    if t:
        lines.append(f"TFLite model: {t['path']} ({t['bytes'] / 1e6:.2f} MB)")
    r = summary.get("registry")
    if r:
        lines.append(f"MLflow model: {r.get('name')} version {r.get('version')} (alias: {r.get('alias') or 'none'})")
    s = summary.get("select")
    if s and not m:
        lines.append(f"selected {s.get('sequences', '?')} sequences from {s.get('files', '?')} parquet files")
    return "\n".join(lines)


def run_demo(root: str | Path = ".", force: bool = False) -> dict:
    """``dvc repro`` the pipeline of ``root`` and print its summary."""
    root = Path(root).resolve()
    if not (root / "dvc.yaml").exists():
        raise AslfsError(f"{root}: no dvc.yaml here; run from the project root")
    environ = project_env(root)
    environ.setdefault("ASLFS_PIPELINE_RUN", time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    from aslfs.servers import PrefectForRun

    start = time.time()
    with PrefectForRun(root) as prefect_server:
        if prefect_server.url:
            environ["PREFECT_API_URL"] = prefect_server.url
        dvc(root, "repro", *(["--force"] if force else []), environ=environ)
    summary = read_summary(root)
    print(format_summary(summary, time.time() - start))
    return summary
