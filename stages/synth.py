"""DVC stage ``synth``: ``python -m stages.synth OUT_DIR`` — the embedded synthetic dataset in the competition format
(:func:`aslfs.data.synth.generate`, parameters: ``synth`` section). With ``data.source: raw`` the pipeline reads a real
competition directory instead; the stage then writes only ``OUT_DIR/SKIPPED.txt`` saying so."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from stages._entry import stage_main

SKIPPED = "SKIPPED.txt"


def write_skipped(out_dir: str | Path, raw_dir: str) -> Path:
    """Replace ``out_dir`` by a folder holding only ``SKIPPED.txt`` (the raw source is selected)."""
    out = Path(out_dir)
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    out.mkdir(parents=True)
    note = out / SKIPPED
    note.write_text(
        "The synthetic dataset was not generated: params.yaml selects data.source: raw, so the pipeline reads the\n"
        f"competition-format directory data.raw_dir = {raw_dir}. Set data.source: synth to generate it here.\n"
    )
    return note


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.synth", description=__doc__)
    parser.add_argument("out_dir", help="folder to (re)write")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = parser.parse_args(argv)

    from aslfs.config import load_params

    params = load_params(args.params)
    if params.data.source == "raw":
        print(f"synth skipped: data.source is raw ({write_skipped(args.out_dir, params.data.raw_dir)})")
        return

    from aslfs.data.synth import generate
    from flows.stage import run_as_flow

    print(json.dumps(run_as_flow("synth", generate, args.out_dir, params.synth), indent=1))


if __name__ == "__main__":
    sys.exit(stage_main("synth", main))
