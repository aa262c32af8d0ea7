"""Stage ``train``: train one model (round, fold, seed) (:func:`aslfs.training.trainer.train_model`; params:
``train``, ``augment``, ``sampling``, and ``export``'s dummy-phrase rule for the validation's ``score_pp``).

FOLD −1 is a full fit (validated on fold 0); SEED −1 draws a seed. The default OUT_DIR is where ``dvc.yaml`` puts the
run: ``models/round1/fold<F>`` in round 1, ``models/round2/seed<S>`` in round 2. A killed run resumes from
``OUT_DIR/checkpoint`` when rerun with the same parameters (``dvc.yaml`` declares the folder ``persist: true``)."""

from __future__ import annotations

import sys

from stages.stage import arg, stage


def default_out_dir(round: int, fold: int, seed: int) -> str:
    """The run folder ``dvc.yaml`` gives a training (round 1: one per fold; round 2: one per seed)."""
    return f"models/round1/fold{fold}" if round == 1 else f"models/round2/seed{seed}"


@stage("train", "train one model (round, fold, seed)", doc=__doc__,
       sections=("train", "augment", "sampling", "export"), arguments=(
           arg("round", type=int, choices=(1, 2), help="1 (round-1 model) or 2 (round-2 model)"),
           arg("fold", type=int, help="validation fold, -1 = full fit (validated on fold 0)"),
           arg("seed", type=int, help="random seed, -1 = draw one"),
           arg("data_dir", nargs="?", default="data/normalized", help="normalised store (default: data/normalized)"),
           arg("folds_csv", nargs="?", default="data/folds.csv", help="fold table (default: data/folds.csv)"),
           arg("out_dir", nargs="?", help="output directory (default: models/round1/fold<F> or models/round2/seed<S>)"),
           arg("oof_csv", nargs="?", help="OOF table, round 2 (default: data/oof.csv)"),
           arg("--no-track", action="store_true", help="do not log an MLflow run"),
           arg("--coordinator", metavar="HOST:PORT",
               help="multi-process (multi-host, JAX) training: where process 0 listens (env ASLFS_COORDINATOR)"),
           arg("--num-processes", type=int, metavar="N", help="processes of the training (env ASLFS_NUM_PROCESSES)"),
           arg("--process-id", type=int, metavar="I", help="this process, 0..N-1 (env ASLFS_PROCESS_ID)"),
       ))
def train(args, train, augment, sampling, export) -> str:
    from aslfs.training import distribution
    from aslfs.training.trainer import train_model

    distribution.join_cluster(distribution.Cluster.from_args(args.coordinator, args.num_processes, args.process_id))
    out_dir = args.out_dir or default_out_dir(args.round, args.fold, args.seed)
    oof = args.oof_csv or ("data/oof.csv" if args.round == 2 else None)
    result = train_model(args.round, args.fold, args.seed, args.data_dir, args.folds_csv, out_dir, oof,
                         train=train, augment=augment, sampling=sampling, export=export, track=not args.no_track)
    m = result.metrics
    return (f"round {args.round} fold {args.fold}: score {m.get('score', float('nan')):.4f}  "
            f"cer {m.get('cer', float('nan')):.4f}  score_pp {m.get('score_pp', float('nan')):.4f}  "
            f"({result.epochs_done} epochs, seed {result.seed}) -> {out_dir}")


if __name__ == "__main__":
    sys.exit(train.main())
