"""Screenshots of the registered model in the MLflow UI, taken by headless Chromium.

    python scripts/registry_screenshots.py [--root .] [--version N] [--out artifacts/screenshots]

It starts the project's MLflow server (the command of ``aslfs servers``, on a free port of 127.0.0.1, stopped at the
end), opens the registered model's page and one version's page (default: the ``champion``, else the newest), checks
that the rendered pages show what the registry should explain (the version's model card, the signature's ``frames``
input and ``phrase`` output, the evaluation section) and writes ``model.png`` and ``version-<N>.png``. A page that
lacks one of those is one line naming it, exit status 1.

Needs a Chromium (``apt-get install chromium``; ``--browser`` names another binary) and a store that holds a
registered version (``make demo`` writes one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aslfs import env

env.setup()

#: What each rendered page must show (the MLflow UI renders the description's Markdown and the signature's schema).
MODEL_PAGE = ("asl-fingerspelling", "champion")
VERSION_PAGE = ("Inputs (1)", "Outputs (1)", "The file", "Training data and profile", "Held-out evaluation",
                "evaluation run", "TFLite contract", "How to call it")
WINDOW = "1440,2000"


def _browser(name: str | None) -> str:
    for candidate in ([name] if name else ["chromium", "chromium-browser", "google-chrome"]):
        found = shutil.which(candidate)
        if found:
            return found
    raise SystemExit(f"registry_screenshots: no browser found ({name or 'chromium'}); apt-get install chromium")


def _chromium(browser: str, url: str, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={profile}", f"--window-size={WINDOW}", "--virtual-time-budget=20000", *extra, url],
            capture_output=True, text=True, timeout=180)


def _page(browser: str, url: str, png: Path, must_show: tuple[str, ...]) -> None:
    dom = _chromium(browser, url, "--dump-dom").stdout
    missing = [text for text in must_show if text not in dom]
    if missing:
        raise SystemExit(f"registry_screenshots: {url} does not show {missing[0]!r} (rendered {len(dom)} characters)")
    _chromium(browser, url, f"--screenshot={png}")
    if not png.is_file() or png.stat().st_size < 10_000:
        raise SystemExit(f"registry_screenshots: {png}: no screenshot written")
    print(f"{png} ({png.stat().st_size:,} bytes): {url}")


def _version(root: Path, name: str, version: str | None) -> str:
    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient()
    if version is not None:
        return version
    try:
        return str(client.get_model_version_by_alias(name, "champion").version)
    except Exception:
        versions = client.search_model_versions(f"name='{name}'")
        if not versions:
            raise SystemExit(f"registry_screenshots: {root / 'mlflow.db'}: no registered version of {name}") from None
        return str(max(int(v.version) for v in versions))


def main(argv=None) -> int:
    from aslfs import servers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder holding mlflow.db and mlruns/")
    parser.add_argument("--name", default="asl-fingerspelling", help="registered model name")
    parser.add_argument("--version", help="version to show (default: the champion, else the newest)")
    parser.add_argument("--out", type=Path, default=Path("artifacts/screenshots"))
    parser.add_argument("--browser", help="Chromium binary (default: chromium on PATH)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / "mlflow.db").is_file():
        raise SystemExit(f"registry_screenshots: {root / 'mlflow.db'}: no MLflow store here (run make demo first)")
    browser = _browser(args.browser)
    version = _version(root, args.name, args.version)
    args.out.mkdir(parents=True, exist_ok=True)

    port = servers.free_port()
    spec = servers.server_specs(root, 0, port)["mlflow"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(spec["cmd"], cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **spec["env"]})
        try:
            deadline = time.time() + 120
            while not servers.healthy(spec["health"]):
                if proc.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-1:]
                    raise SystemExit(f"registry_screenshots: the MLflow server did not start ({' '.join(tail)})")
                time.sleep(0.5)
            base = spec["url"]
            _page(browser, f"{base}/#/models/{args.name}", args.out / "model.png", MODEL_PAGE)
            _page(browser, f"{base}/#/models/{args.name}/versions/{version}", args.out / f"version-{version}.png",
                  VERSION_PAGE)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
