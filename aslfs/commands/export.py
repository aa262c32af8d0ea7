"""``aslfs export``: ensemble + TFLite export (``model.tflite`` + ``inference_args.json``).

Trained members::

    aslfs export --models runs/seed0 runs/seed1 artifacts/submission

Untrained members of a preset (same graph, size and speed; check them before spending GPU days)::

    aslfs export --preset kaggle-1st-round2 --ensemble 2 --untrained --force-steps 33 /tmp/sub
"""

from __future__ import annotations

import argparse


def add_arguments(parser):
    parser.add_argument("out_dir", help="submission folder to write (model.tflite, inference_args.json)")
    parser.add_argument("--models", nargs="+", default=[], metavar="RUN_DIR",
                        help="trained members: run folders (with model.keras) or .keras files")
    parser.add_argument("--preset", help="model preset of the untrained members (with --untrained)")
    parser.add_argument("--ensemble", type=int, default=1, help="number of untrained members (default 1)")
    parser.add_argument("--untrained", action="store_true", help="freshly initialised members of --preset")
    parser.add_argument("--seed", type=int, default=0, help="first seed of the untrained members (default 0)")
    parser.add_argument("--force-steps", type=int, default=None,
                        help="always decode this many steps (speed comparisons at equal work)")
    parser.add_argument("--resize-mode", choices=("linear", "nearest"), default=None,
                        help="time resize above max_len (default: sampling.resize_mode of the params file)")
    parser.add_argument("--register", action=argparse.BooleanOptionalAction, default=None,
                        help="register in the MLflow Model Registry (default: export.register_model; never untrained)")
    parser.add_argument("--diagnostics", action=argparse.BooleanOptionalAction, default=None,
                        help="add the diagnostics signature (default: export.diagnostics)")
    parser.add_argument("--decoder", choices=("attention", "ctc"), default=None,
                        help="decoding in the graph (default: export.decoder)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--report", default=None, help="also write the export report (JSON) here")


def run(args) -> int:
    from aslfs.export.tflite import export_from_params

    result = export_from_params(args.out_dir, models=args.models, params_path=args.params, preset=args.preset,
                                ensemble=args.ensemble, untrained=args.untrained, seed=args.seed,
                                force_steps=args.force_steps, resize_mode=args.resize_mode, register=args.register,
                                report_path=args.report,
                                overrides={"diagnostics": args.diagnostics, "decoder": args.decoder})
    print(format_result(result))
    return 0


def format_result(result) -> str:
    lines = [f"wrote {result.tflite_path} ({result.bytes:,} bytes = {result.megabytes:.2f} MB, "
             f"{result.members} member(s), signatures {', '.join(result.signatures)}) and {result.args_path}",
             f"export took {result.seconds:.1f} s (SavedModel {result.saved_model_seconds:.1f} s, "
             f"TFLite conversion {result.convert_seconds:.1f} s)"]
    reg = result.info.get("registry")
    if reg:
        lines.append(f"registered as {reg['name']} version {reg['version']}")
    return "\n".join(lines)
