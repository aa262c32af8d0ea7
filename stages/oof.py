"""DVC stage ``oof``: ``python -m stages.oof DATA_DIR FOLDS_CSV OUT_CSV MODEL_DIR [MODEL_DIR ...]`` — the round-1
out-of-fold score table that round 2 trains its confidence head on (:func:`aslfs.training.oof.write_oof_table`,
docs/reference.md §1.8; parameters: ``oof`` section). MODEL_DIRs are round-1 training outputs (fold ≥ 0, any seeds)."""

from __future__ import annotations

import argparse
import sys

from stages._entry import stage_main


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.oof", description=__doc__)
    parser.add_argument("data_dir", help="normalised sequence store")
    parser.add_argument("folds_csv", help="fold table")
    parser.add_argument("out_csv", help="OOF table to (re)write")
    parser.add_argument("model_dirs", nargs="+", help="round-1 training output directories, or folders of them")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = parser.parse_args(argv)

    from aslfs.config import OofParams
    from aslfs.training.oof import write_oof_table
    from aslfs.training.trainer import load_sections
    from flows.stage import run_as_flow

    params = load_sections(args.params, {"oof": OofParams})["oof"]
    from aslfs.runs import expand_run_dirs

    table = run_as_flow("oof", write_oof_table, args.data_dir, args.folds_csv, expand_run_dirs(args.model_dirs),
                        args.out_csv, params)
    print(f"OOF table: {len(table)} rows -> {args.out_csv}")


if __name__ == "__main__":
    sys.exit(stage_main("oof", main))
