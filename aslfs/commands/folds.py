"""``aslfs folds SELECTED_DIR OUT_CSV``: participant-grouped, balanced fold split of the selected sequences."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("selected_dir", nargs="?", default="data/selected", help="selected store (default: data/selected)")
    parser.add_argument("out_csv", nargs="?", default="data/folds.csv", help="fold table (default: data/folds.csv)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--n-folds", type=int, help="override folds.n_folds")
    parser.add_argument("--seed", type=int, help="override folds.seed")


def run(args) -> int:
    from aslfs.config import FoldsParams, load_params
    from aslfs.data.folds import write_folds

    params = load_params(args.params).folds
    overrides = {k: v for k, v in (("n_folds", args.n_folds), ("seed", args.seed)) if v is not None}
    report = write_folds(args.selected_dir, args.out_csv, FoldsParams.model_validate({**params.model_dump(), **overrides}))
    for fold, v in report["folds"].items():
        print(f"fold {fold}: {v['participants']} participants, {v['train']} train + {v['supplemental']} supplemental")
    return 0
