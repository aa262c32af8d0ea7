"""Stage ``export``: trained members as one TFLite ensemble with the competition contract
(:func:`aslfs.export.tflite.export_ensemble`; params: ``export``, ``sampling.resize_mode``). OUT_DIR receives exactly
``model.tflite`` and ``inference_args.json``; with ``export.register_model`` the file is registered in the MLflow
Model Registry as ``export.model_name``.

Trained members (run folders, or folders of them)::

    aslfs export artifacts/submission models/round2

Untrained members of a preset (same graph, size and speed; check them before spending GPU days)::

    aslfs export /tmp/sub --preset kaggle-1st-round2 --ensemble 2 --untrained --force-steps 33
"""

from __future__ import annotations

import argparse
import sys

from stages.stage import arg, stage


def decoding_line(info: dict) -> str:
    """How the exported file decodes, in words (the output length rule: aslfs/export/graph.py, step 5)."""
    if info.get("head") == "ctc":
        return "decoding: CTC head, one pass; at most 32 rows"
    steps = info.get("force_steps")
    if steps:
        return (f"decoding: attention head, exactly {steps} step(s) per sequence (forced); "
                f"at most {min(int(steps), int(info['max_steps']) - 1)} rows, cut at the first end id")
    stop = "stopping at the end id" if info.get("early_stop", True) else "no early stop"
    return f"decoding: attention head, up to {info['max_steps']} steps, {stop}; at most {int(info['max_steps']) - 1} rows"


def format_result(result) -> str:
    lines = [f"wrote {result.tflite_path} ({result.bytes:,} bytes = {result.megabytes:.2f} MB, "
             f"{result.members} member(s), signatures {', '.join(result.signatures)}) and {result.args_path}",
             f"export took {result.seconds:.1f} s (SavedModel {result.saved_model_seconds:.1f} s, "
             f"TFLite conversion {result.convert_seconds:.1f} s)",
             decoding_line(result.info)]
    reg = result.info.get("registry")
    if reg:
        lines.append(f"registered as {reg['name']} version {reg['version']}")
    return "\n".join(lines)


@stage("export", "ensemble + TFLite export (model.tflite + inference_args.json)", doc=__doc__,
       sections=("export", "sampling"), arguments=(
           arg("out_dir", help="submission folder to write (model.tflite, inference_args.json)"),
           arg("runs", nargs="*", help="trained members: run folders (with model.keras), folders of them, .keras files"),
           arg("--report", help="also write the export report (JSON: size, timings; a DVC metrics file) here"),
           arg("--preset", help="model preset of the untrained members (with --untrained)"),
           arg("--ensemble", type=int, default=1, help="number of untrained members (default 1)"),
           arg("--untrained", action="store_true", help="freshly initialised members of --preset"),
           arg("--seed", type=int, default=0, help="first seed of the untrained members (default 0)"),
           arg("--force-steps", type=int, help="always decode this many steps (speed comparisons at equal work)"),
           arg("--resize-mode", choices=("linear", "nearest"), help="override sampling.resize_mode"),
           arg("--register", action=argparse.BooleanOptionalAction,
               help="override export.register_model (never for untrained members)"),
           arg("--diagnostics", action=argparse.BooleanOptionalAction, help="override export.diagnostics"),
           arg("--head", choices=("attention", "ctc"), help="override export.head"),
       ))
def export(args, export, sampling) -> str:
    from aslfs.config import with_overrides
    from aslfs.export.tflite import export_ensemble

    params = with_overrides(export, "export", diagnostics=args.diagnostics, head=args.head)
    result = export_ensemble(args.out_dir, models=args.runs, params=params,
                             resize_mode=args.resize_mode or sampling.resize_mode, preset=args.preset,
                             ensemble=args.ensemble, untrained=args.untrained, seed=args.seed,
                             force_steps=args.force_steps, register=args.register, report_path=args.report)
    return format_result(result)


if __name__ == "__main__":
    sys.exit(export.main())
