"""DVC stage ``export``: ``python -m stages.export OUT_DIR RUN_DIR [RUN_DIR ...] [--report JSON]`` — the trained
members as one TFLite ensemble with the competition contract (:func:`aslfs.export.tflite.export_ensemble`;
parameters: ``export``, ``sampling.resize_mode``). OUT_DIR receives exactly ``model.tflite`` and
``inference_args.json``; with ``export.register_model`` the file is registered in the MLflow Model Registry."""

from __future__ import annotations

import argparse
import sys

from stages._entry import stage_main


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.export", description=__doc__)
    parser.add_argument("out_dir", help="submission folder (model.tflite, inference_args.json)")
    parser.add_argument("runs", nargs="+", help="training run folders (each with model.keras) or folders of them")
    parser.add_argument("--report", default=None, help="export report JSON (size, timings; a DVC metrics file)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = parser.parse_args(argv)

    from aslfs.commands.export import format_result
    from aslfs.export.tflite import export_from_params
    from flows.stage import run_as_flow

    from aslfs.runs import expand_run_dirs

    result = run_as_flow("export", export_from_params, args.out_dir, models=expand_run_dirs(args.runs),
                         params_path=args.params,
                         report_path=args.report)
    print(format_result(result))


if __name__ == "__main__":
    sys.exit(stage_main("export", main))
