"""Stage ``folds``: participant-grouped, balanced fold split of the selected sequences
(:func:`aslfs.data.folds.write_folds`; params: ``folds``). Only the store's index is read."""

from __future__ import annotations

import sys

from stages.stage import arg, stage


@stage("folds", "participant-grouped fold split", doc=__doc__, sections=("folds",), arguments=(
    arg("selected_dir", nargs="?", default="data/selected", help="selected store (default: data/selected)"),
    arg("out_csv", nargs="?", default="data/folds.csv", help="fold table to (re)write (default: data/folds.csv)"),
    arg("--n-folds", type=int, help="override folds.n_folds"),
    arg("--seed", type=int, help="override folds.seed"),
))
def folds(args, folds) -> str:
    from aslfs.config import with_overrides
    from aslfs.data.folds import write_folds

    report = write_folds(args.selected_dir, args.out_csv,
                         with_overrides(folds, "folds", n_folds=args.n_folds, seed=args.seed))
    lines = [f"{report['n_folds']} folds of {report['sequences']} sequences -> {args.out_csv}"]
    lines += [f"fold {fold}: {v['participants']} participants, {v['train']} train + {v['supplemental']} supplemental"
              for fold, v in report["folds"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(folds.main())
