"""Stage ``oof``: the round-1 out-of-fold score table that round 2 trains its confidence head on
(:func:`aslfs.training.oof.write_oof_table`, docs/reference.md §1.8; params: ``oof``, and ``sampling``'s supplemental
rows). MODEL_DIRs are round-1 training outputs (fold ≥ 0, any seeds) or folders of them (``models/round1``)."""

from __future__ import annotations

import sys

from stages.stage import arg, stage


@stage("oof", "out-of-fold confidence targets from round-1 models", doc=__doc__, sections=("oof", "sampling"),
       arguments=(
           arg("data_dir", help="normalised store"),
           arg("folds_csv", help="fold table"),
           arg("out_csv", help="OOF table to (re)write"),
           arg("model_dirs", nargs="+", help="round-1 training output directories, or folders of them"),
           arg("--no-track", action="store_true", help="do not log an MLflow run"),
       ))
def oof(args, oof, sampling) -> str:
    from aslfs.runs import expand_runs
    from aslfs.training.oof import write_oof_table

    table = write_oof_table(args.data_dir, args.folds_csv, expand_runs(args.model_dirs), args.out_csv, oof,
                            track=not args.no_track, sampling=sampling)
    return f"OOF table: {len(table)} rows -> {args.out_csv}"


if __name__ == "__main__":
    sys.exit(oof.main())
