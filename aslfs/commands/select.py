"""``aslfs select RAW_DIR OUT_DIR``: competition-format files → selected store (one shard per parquet file)."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("raw_dir", nargs="?", help="competition-format directory (default: params data.raw_dir)")
    parser.add_argument("out_dir", nargs="?", default="data/selected", help="store to (re)write (default: data/selected)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--on-invalid", choices=["error", "skip"], help="override select.on_invalid")
    parser.add_argument("--workers", type=int, help="override select.workers")
    parser.add_argument("--max-phrase-len", type=int, help="override select.max_phrase_len")


def run(args) -> int:
    from aslfs.config import SelectParams, load_params
    from aslfs.data.select import format_report, select

    params = load_params(args.params)
    overrides = {k: v for k, v in (("on_invalid", args.on_invalid), ("workers", args.workers),
                                   ("max_phrase_len", args.max_phrase_len)) if v is not None}
    sel = SelectParams.model_validate({**params.select.model_dump(), **overrides})
    raw_dir = args.raw_dir or params.data.raw_dir
    print(format_report(select(raw_dir, args.out_dir, sel), args.out_dir))
    return 0
