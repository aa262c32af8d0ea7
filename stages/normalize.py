"""Stage ``normalize``: selected store → normalised store (:func:`aslfs.data.normalize.normalize_store`,
docs/reference.md §2.1; no parameters)."""

from __future__ import annotations

import sys

from stages.stage import arg, stage


@stage("normalize", "selected store -> normalised store", doc=__doc__, arguments=(
    arg("selected_dir", nargs="?", default="data/selected", help="selected store (default: data/selected)"),
    arg("out_dir", nargs="?", default="data/normalized", help="store to (re)write (default: data/normalized)"),
))
def normalize(args) -> str:
    from aslfs.data.normalize import normalize_store

    report = normalize_store(args.selected_dir, args.out_dir)
    return (f"normalised {report['sequences']} sequences ({report['frames']} frames, {report['shards']} shards) into "
            f"{args.out_dir}; {report['all_zero_count']} normalise to all zeros")


if __name__ == "__main__":
    sys.exit(normalize.main())
