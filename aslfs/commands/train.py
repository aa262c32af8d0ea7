"""``aslfs train ROUND FOLD SEED [DATA_DIR FOLDS_CSV OUT_DIR [OOF_CSV]]``: train one model (round, fold, seed) with
the ``train`` / ``augment`` / ``sampling`` parameters; resumes from ``OUT_DIR/checkpoint`` after an interruption."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("round", type=int, choices=(1, 2), help="1 or 2")
    parser.add_argument("fold", type=int, help="validation fold, -1 = full fit (validated on fold 0)")
    parser.add_argument("seed", type=int, help="random seed, -1 = draw one")
    parser.add_argument("data_dir", nargs="?", default="data/normalized", help="normalised store (default: data/normalized)")
    parser.add_argument("folds_csv", nargs="?", default="data/folds.csv", help="fold table (default: data/folds.csv)")
    parser.add_argument("out_dir", nargs="?", help="output directory (default: models/round<R>/fold<F>-seed<S>)")
    parser.add_argument("oof_csv", nargs="?", help="OOF table, round 2 (default: data/oof.csv)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--no-track", action="store_true", help="do not log an MLflow run")


def run(args) -> int:
    from aslfs.config import AugmentParams, SamplingParams, TrainParams
    from aslfs.training.trainer import load_sections, train_model

    sections = load_sections(args.params, {"train": TrainParams, "augment": AugmentParams, "sampling": SamplingParams})
    out_dir = args.out_dir or f"models/round{args.round}/fold{args.fold}-seed{args.seed}"
    oof = args.oof_csv or ("data/oof.csv" if args.round == 2 else None)
    result = train_model(args.round, args.fold, args.seed, args.data_dir, args.folds_csv, out_dir, oof,
                         track=not args.no_track, **sections)
    m = result.metrics
    print(f"score {m.get('score', float('nan')):.4f}  cer {m.get('cer', float('nan')):.4f}  "
          f"score_pp {m.get('score_pp', float('nan')):.4f}  ({result.epochs_done} epochs, seed {result.seed}) -> {out_dir}")
    return 0
