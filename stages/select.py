"""Stage ``select``: competition-format files → selected store, one shard per parquet file
(:func:`aslfs.data.select.select`; params: ``data`` (the default RAW_DIR), ``select``)."""

from __future__ import annotations

import sys

from stages.stage import arg, stage


@stage("select", "raw competition files -> selected per-sequence store", doc=__doc__, sections=("data", "select"),
       arguments=(
           arg("raw_dir", nargs="?", help="competition-format directory (default: data.raw_dir of the params)"),
           arg("out_dir", nargs="?", default="data/selected", help="store to (re)write (default: data/selected)"),
           arg("--on-invalid", choices=["error", "skip"], help="override select.on_invalid"),
           arg("--workers", type=int, help="override select.workers"),
           arg("--max-phrase-len", type=int, help="override select.max_phrase_len"),
       ))
def select(args, data, select) -> str:
    from aslfs.config import with_overrides
    from aslfs.data.select import format_report
    from aslfs.data.select import select as select_store

    params = with_overrides(select, "select", on_invalid=args.on_invalid, workers=args.workers,
                            max_phrase_len=args.max_phrase_len)
    return format_report(select_store(args.raw_dir or data.raw_dir, args.out_dir, params), args.out_dir)


if __name__ == "__main__":
    sys.exit(select.main())
