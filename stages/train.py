"""DVC stage ``train``: ``python -m stages.train ROUND FOLD SEED DATA_DIR FOLDS_CSV OUT_DIR [OOF_CSV]`` — train one
model (:func:`aslfs.training.trainer.train_model`; parameters: ``train``, ``augment``, ``sampling`` sections).

FOLD −1 is a full fit (validated on fold 0); SEED −1 draws a seed. A killed run resumes from
``OUT_DIR/checkpoint`` when rerun with the same parameters (declare that folder ``persist: true`` in dvc.yaml, or
DVC deletes it before rerunning the stage)."""

from __future__ import annotations

import argparse
import signal
import sys

from stages._entry import stage_main


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.train", description=__doc__)
    parser.add_argument("round", type=int, choices=(1, 2), help="1 (round-1 model) or 2 (round-2 model)")
    parser.add_argument("fold", type=int, help="validation fold, -1 = full fit")
    parser.add_argument("seed", type=int, help="random seed, -1 = draw one")
    parser.add_argument("data_dir", help="normalised sequence store")
    parser.add_argument("folds_csv", help="fold table")
    parser.add_argument("out_dir", help="output directory")
    parser.add_argument("oof_csv", nargs="?", help="OOF table (round 2)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = parser.parse_args(argv)

    from aslfs.config import AugmentParams, SamplingParams, TrainParams
    from aslfs.training.trainer import load_sections, train_model
    from flows.stage import run_as_flow

    sections = load_sections(args.params, {"train": TrainParams, "augment": AugmentParams, "sampling": SamplingParams})

    def terminate(signum, frame):  # SIGTERM (DVC/Prefect cancel): end the MLflow run as KILLED, keep the checkpoint
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    result = run_as_flow("train", train_model, args.round, args.fold, args.seed, args.data_dir, args.folds_csv,
                         args.out_dir, args.oof_csv, **sections)
    m = result.metrics
    print(f"round {args.round} fold {args.fold} seed {result.seed}: {result.epochs_done} epochs, "
          f"score {m.get('score', float('nan')):.4f}, cer {m.get('cer', float('nan')):.4f}, "
          f"score_pp {m.get('score_pp', float('nan')):.4f} -> {args.out_dir}")


if __name__ == "__main__":
    sys.exit(stage_main("train", main))
