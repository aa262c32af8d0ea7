"""The ``aslfs`` command line. It parses arguments and calls library functions; it does no work of its own.

Each sub-command lives in ``aslfs/commands/<name>.py`` and provides ``add_arguments(parser)`` and ``run(args) -> int``.
Errors the user can cause (:class:`aslfs.errors.AslfsError`, and filesystem errors naming a file, e.g. an output
directory that cannot be written) are printed as one line, without a traceback, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from aslfs import env

#: name -> (module under aslfs.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "generate the embedded dataset in the exact competition format"),
    "render": ("render", "draw one sequence as an animated GIF or a contact sheet PNG"),
    "select": ("select", "raw competition files -> selected per-sequence store"),
    "normalize": ("normalize", "selected store -> normalised store"),
    "folds": ("folds", "participant-grouped fold split"),
    "model": ("model", "build a model preset and print its summary"),
    "train": ("train", "train one model (round, fold, seed)"),
    "oof": ("oof", "out-of-fold confidence targets from round-1 models"),
    "import-checkpoint": ("import_checkpoint", "import a checkpoint of the 1st-place reference code into a .keras model"),
    "export": ("export", "ensemble + TFLite export (model.tflite + inference_args.json)"),
    "evaluate": ("evaluate", "score an exported model on held-out data"),
    "predict": ("predict", "predict phrases for a competition directory or a parquet file"),
    "demo": ("demo", "run the whole pipeline (dvc repro) and print the summary"),
    "profile": ("profile", "rewrite params.yaml from a profile: demo, ci or kaggle-1st"),
    "servers": ("servers", "start, stop or show local Prefect and MLflow servers (127.0.0.1)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aslfs", description="ASL fingerspelling recognition from MediaPipe landmarks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(f"aslfs.commands.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"aslfs.commands.{module}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    env.setup()
    from aslfs.errors import AslfsError, user_error_line

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (AslfsError, OSError) as err:  # OSError: e.g. an output directory that cannot be written
        line = user_error_line(err)
        if line is None:
            raise
        print(f"aslfs {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aslfs {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
