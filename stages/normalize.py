"""DVC stage ``normalize``: ``python -m stages.normalize SELECTED_DIR OUT_DIR`` — selected store → normalised store
(:func:`aslfs.data.normalize.normalize_store`, docs/reference.md §2.1; no parameters)."""

from __future__ import annotations

import argparse
import sys

from stages._entry import stage_main


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.normalize", description=__doc__)
    parser.add_argument("selected_dir", help="selected store (output of select)")
    parser.add_argument("out_dir", help="normalised store to (re)write")
    args = parser.parse_args(argv)

    from aslfs.data.normalize import normalize_store
    from flows.stage import run_as_flow

    report = run_as_flow("normalize", normalize_store, args.selected_dir, args.out_dir)
    print(f"normalised {report['sequences']} sequences ({report['frames']} frames, {report['shards']} shards); "
          f"{report['all_zero_count']} normalise to all zeros")


if __name__ == "__main__":
    sys.exit(stage_main("normalize", main))
