"""``aslfs oof DATA_DIR FOLDS_CSV OUT_CSV MODEL_DIR...``: the round-1 out-of-fold score table for round 2."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("data_dir", help="normalised store")
    parser.add_argument("folds_csv", help="fold table")
    parser.add_argument("out_csv", help="OOF table to write")
    parser.add_argument("model_dirs", nargs="+", help="round-1 training output directories (fold >= 0)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--no-track", action="store_true", help="do not log an MLflow run")


def run(args) -> int:
    from aslfs.config import OofParams
    from aslfs.training.oof import write_oof_table
    from aslfs.training.trainer import load_sections

    params = load_sections(args.params, {"oof": OofParams})["oof"]
    table = write_oof_table(args.data_dir, args.folds_csv, args.model_dirs, args.out_csv, params,
                            track=not args.no_track)
    print(f"{len(table)} rows -> {args.out_csv}")
    return 0
