"""Stage ``evaluate``: score the exported file on held-out data (:func:`aslfs.evaluate.stage.run_evaluation`; params:
``evaluate``, ``export.model_name``): metrics (DVC metrics), plot data (score by length and participant,
confusions, training curves), an MLflow run and the registry's ``champion`` alias on ``export.model_name``.

MODEL is a submission folder, a ``.tflite`` file or an MLflow model URI (``models:/NAME@ALIAS``); DATA a selected
store or a competition directory. With FOLDS_CSV and FOLD only the non-supplemental sequences of that fold are
scored. Like every stage it logs to MLflow (and may move the champion alias, ``evaluate.promote``) unless
``--no-track``; the outputs default to the paths of ``dvc.yaml``."""

from __future__ import annotations

import sys

from stages.stage import arg, stage


@stage("evaluate", "score an exported model on held-out data", doc=__doc__, sections=("evaluate", "export"),
       arguments=(
           arg("model", help="submission folder, .tflite file or MLflow model URI (models:/NAME@ALIAS)"),
           arg("data", help="selected store or competition-format directory"),
           arg("folds_csv", nargs="?", help="fold table (with FOLD)"),
           arg("fold", nargs="?", type=int, help="held-out fold (its non-supplemental sequences)"),
           arg("metrics", nargs="?", default="artifacts/metrics/evaluate.json",
               help="metrics JSON to write (default: artifacts/metrics/evaluate.json)"),
           arg("out_dir", nargs="?", default="artifacts/evaluate",
               help="plot data and reports folder (default: artifacts/evaluate)"),
           arg("--runs", nargs="*", default=[],
               help="the members as export takes them: run folders, folders of them, .keras files"),
           arg("--registry", default="artifacts/registry.json", help="registry outcome JSON to write"),
           arg("--no-track", action="store_true", help="log no MLflow run and leave the registry alone"),
       ))
def evaluate(args, evaluate, export) -> str:
    from aslfs.evaluate.outputs import format_report
    from aslfs.evaluate.stage import run_evaluation

    result = run_evaluation(args.model, args.data, args.metrics, args.out_dir, params=evaluate,
                            folds_csv=args.folds_csv, fold=args.fold, runs=args.runs,
                            track=not args.no_track, registry_path=args.registry, progress=False,
                            model_name=export.model_name)
    return format_report(result)


if __name__ == "__main__":
    sys.exit(evaluate.main())
