"""Stage ``synth``: the embedded synthetic dataset in the competition format (:func:`aslfs.data.synth.generate`;
params: ``data``, ``synth``). With ``data.source: raw`` the pipeline reads a real competition directory instead; the
stage then writes only ``OUT_DIR/SKIPPED.txt`` saying so."""

from __future__ import annotations

import sys
from pathlib import Path

from stages.stage import arg, stage

SKIPPED = "SKIPPED.txt"


def write_skipped(out_dir: str | Path, raw_dir: str) -> Path:
    """Replace ``out_dir`` by a folder holding only ``SKIPPED.txt`` (the raw source is selected)."""
    from aslfs.atomic import atomic_dir

    with atomic_dir(out_dir) as tmp:
        (tmp / SKIPPED).write_text(
            "The synthetic dataset was not generated: params.yaml selects data.source: raw, so the pipeline reads "
            f"the\ncompetition-format directory data.raw_dir = {raw_dir}. Set data.source: synth to generate it "
            "here.\n"
        )
    return Path(out_dir) / SKIPPED


@stage("synth", "generate the embedded dataset in the exact competition format", doc=__doc__,
       sections=("data", "synth"), arguments=(
           arg("out_dir", nargs="?", default="data/raw", help="folder to (re)write (default: data/raw)"),
           arg("--sequences", type=int, help="override synth.sequences"),
           arg("--seed", type=int, help="override synth.seed"),
           arg("--workers", type=int, help="override synth.workers (the output does not depend on it)"),
       ))
def synth(args, data, synth) -> str:
    from aslfs.config import with_overrides

    if data.source == "raw":
        return f"synth skipped: data.source is raw ({write_skipped(args.out_dir, data.raw_dir)})"
    from aslfs.data.synth import generate

    params = with_overrides(synth, "synth", sequences=args.sequences, seed=args.seed, workers=args.workers)
    r = generate(args.out_dir, params)
    return (f"generated {r['sequences']} sequences ({r['train_sequences']} train, {r['supplemental_sequences']} "
            f"supplemental) of {r['participants']} participants in {r['files']} files: {r['frames']:,} frames, "
            f"dominant hand missing in {r['dominant_missing_fraction']:.1%} of them, {r['seconds']:.0f} s -> "
            f"{r['out_dir']}")


if __name__ == "__main__":
    sys.exit(synth.main())
