"""``aslfs synth-stats DIR [--max-sequences N] [--json]``: the dominant hand's statistics of a competition-format
directory (size, position, finger and wrist motion, depth range, visible frames per character; definitions in
:mod:`aslfs.data.hand_stats`), as a table of p10 / median / p90 per row or as JSON."""

from __future__ import annotations

import json


def add_arguments(parser):
    parser.add_argument("input", help="competition-format directory (train.csv / supplemental_metadata.csv + parquet)")
    parser.add_argument("--max-sequences", type=int, metavar="N",
                        help="measure only the first N sequences of the metadata (train rows first)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run(args) -> int:
    from aslfs.data import hand_stats
    from aslfs.errors import ConfigError

    if args.max_sequences is not None and args.max_sequences < 1:
        raise ConfigError(f"--max-sequences {args.max_sequences}: must be at least 1")
    stats = hand_stats.dataset_stats(args.input, args.max_sequences)
    print(json.dumps(stats, indent=1) if args.json else hand_stats.format_table(stats))
    return 0
