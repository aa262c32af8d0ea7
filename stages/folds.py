"""DVC stage ``folds``: ``python -m stages.folds SELECTED_DIR OUT_CSV`` — participant-grouped folds of the selected
sequences (:func:`aslfs.data.folds.write_folds`, parameters: ``folds`` section)."""

from __future__ import annotations

import argparse
import sys

from stages._entry import stage_main


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.folds", description=__doc__)
    parser.add_argument("selected_dir", help="selected store (only its index.parquet is read)")
    parser.add_argument("out_csv", help="fold table to (re)write")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = parser.parse_args(argv)

    from aslfs.config import load_params
    from aslfs.data.folds import write_folds
    from flows.stage import run_as_flow

    params = load_params(args.params).folds
    report = run_as_flow("folds", write_folds, args.selected_dir, args.out_csv, params)
    sizes = ", ".join(f"{f}: {v['train']}+{v['supplemental']}" for f, v in report["folds"].items())
    print(f"{report['n_folds']} folds of {report['sequences']} sequences (train+supplemental per fold: {sizes})")


if __name__ == "__main__":
    sys.exit(stage_main("folds", main))
