"""``aslfs normalize SELECTED_DIR OUT_DIR``: selected store → normalised store (docs/reference.md §2.1)."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("selected_dir", nargs="?", default="data/selected", help="selected store (default: data/selected)")
    parser.add_argument("out_dir", nargs="?", default="data/normalized", help="store to (re)write (default: data/normalized)")


def run(args) -> int:
    from aslfs.data.normalize import normalize_store

    report = normalize_store(args.selected_dir, args.out_dir)
    print(f"normalised {report['sequences']} sequences ({report['frames']} frames) into {args.out_dir}; "
          f"{report['all_zero_count']} normalise to all zeros")
    return 0
