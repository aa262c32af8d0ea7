"""DVC stage ``evaluate``: ``python -m stages.evaluate SUBMISSION_DIR SELECTED_STORE FOLDS_CSV FOLD METRICS_JSON
OUT_DIR [--runs RUN_DIR ...] [--registry JSON]`` — score the exported file on the held-out fold
(:func:`aslfs.evaluate.run_evaluation`; parameters: ``evaluate``): DVC metrics, plot data (score by length and
participant, confusions, training curves), an MLflow run, and the registry's ``champion`` alias."""

from __future__ import annotations

import argparse
import sys

from stages._entry import stage_main


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.evaluate", description=__doc__)
    parser.add_argument("model", help="submission folder (output of export)")
    parser.add_argument("data", help="selected store (raw frames)")
    parser.add_argument("folds_csv", help="fold table")
    parser.add_argument("fold", type=int, help="held-out fold")
    parser.add_argument("metrics", help="metrics JSON to write (DVC metrics)")
    parser.add_argument("out_dir", help="plot data and reports folder (DVC plots)")
    parser.add_argument("--runs", nargs="*", default=[], help="training run folders of the members")
    parser.add_argument("--registry", default="artifacts/registry.json", help="registry outcome JSON")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = parser.parse_args(argv)

    from aslfs.evaluate import evaluate_from_params, format_report
    from flows.stage import run_as_flow

    from aslfs.runs import expand_run_dirs

    args.runs = expand_run_dirs(args.runs)
    result = run_as_flow("evaluate", evaluate_from_params, args.model, args.data, args.metrics, args.out_dir,
                         params_path=args.params, folds_csv=args.folds_csv, fold=args.fold, runs=args.runs,
                         track=True, registry_path=args.registry, progress=False)
    print(format_report(result))


if __name__ == "__main__":
    sys.exit(stage_main("evaluate", main))
