"""DVC stage ``select``: ``python -m stages.select RAW_DIR OUT_DIR`` — competition files → selected store
(:func:`aslfs.data.select.select`, parameters: ``select`` section)."""

from __future__ import annotations

import argparse
import sys

from stages._entry import stage_main


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.select", description=__doc__)
    parser.add_argument("raw_dir", help="competition-format directory")
    parser.add_argument("out_dir", help="selected store to (re)write")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = parser.parse_args(argv)

    from aslfs.config import load_params
    from aslfs.data.select import format_report, select
    from flows.stage import run_as_flow

    params = load_params(args.params).select
    report = run_as_flow("select", select, args.raw_dir, args.out_dir, params)
    print(format_report(report, args.out_dir))


if __name__ == "__main__":
    sys.exit(stage_main("select", main))
