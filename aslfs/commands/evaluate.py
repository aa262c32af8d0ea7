"""``aslfs evaluate MODEL DATA``: score an exported model (submission folder, .tflite or MLflow URI) on held-out data.

DATA is a selected store (``data/selected``) or a competition directory; ``--folds data/folds.csv --fold K`` keeps
the non-supplemental sequences of fold K (the trainer's validation rows).
"""

from __future__ import annotations

import argparse


def add_arguments(parser):
    parser.add_argument("model", help="submission folder, .tflite file or MLflow model URI (models:/NAME@ALIAS)")
    parser.add_argument("data", help="selected store or competition-format directory")
    parser.add_argument("--folds", default=None, help="fold table (with --fold)")
    parser.add_argument("--fold", type=int, default=None, help="held-out fold (non-supplemental rows)")
    parser.add_argument("--metrics", default="artifacts/metrics/evaluate.json", help="metrics JSON to write")
    parser.add_argument("--out-dir", default="artifacts/evaluate", help="plots and reports folder")
    parser.add_argument("--runs", nargs="*", default=[], help="training run folders of the members (curves)")
    parser.add_argument("--track", action=argparse.BooleanOptionalAction, default=False,
                        help="log to MLflow and move the registry's champion alias when the score beats it")
    parser.add_argument("--registry-out", default=None, help="write the registry outcome (JSON) here")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")


def run(args) -> int:
    from aslfs.evaluate import evaluate_from_params, format_report

    result = evaluate_from_params(args.model, args.data, args.metrics, args.out_dir, params_path=args.params,
                                  folds_csv=args.folds, fold=args.fold, runs=args.runs, track=args.track,
                                  registry_path=args.registry_out)
    print(format_report(result))
    return 0
