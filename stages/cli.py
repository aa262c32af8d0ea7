"""The ``aslfs`` command line (``aslfs = stages.cli:main``): the pipeline stages, as declared in ``stages/<name>.py``,
plus the commands that are not stages (``aslfs/commands``). It parses arguments and calls library functions; errors
the user can cause print as one line ``aslfs <command>: error: ...`` with exit status 2
(:func:`stages.stage.run_entry`, shared with the DVC stage entries).

The program lives here, outside the library, because it lists the stages: ``aslfs`` never imports ``stages``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import stages
from stages.stage import REGISTRY, Stage, run_entry

#: Help order of the stages (the pipeline's order); a stage module not listed here follows them.
PIPELINE_ORDER = ("synth", "select", "normalize", "folds", "train", "oof", "export", "evaluate")


def load_stages() -> list[Stage]:
    """Import every ``stages.<name>`` module (each registers its declaration); the stages in pipeline order."""
    for info in pkgutil.iter_modules(stages.__path__):
        if info.name not in ("cli", "stage"):
            importlib.import_module(f"stages.{info.name}")
    rank = {name: i for i, name in enumerate(PIPELINE_ORDER)}
    return sorted(REGISTRY.values(), key=lambda s: (rank.get(s.name, len(rank)), s.name))


def build_parser() -> argparse.ArgumentParser:
    from aslfs.commands import COMMANDS

    parser = argparse.ArgumentParser(prog="aslfs", description="ASL fingerspelling recognition from MediaPipe landmarks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for declared in load_stages():
        p = sub.add_parser(declared.name, help=declared.help, description=declared.doc or declared.help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        declared.add_arguments(p)
        p.set_defaults(_run=lambda args, s=declared: print(s.run(args)))
    for name, help_text in COMMANDS.items():
        mod = importlib.import_module(f"aslfs.commands.{name.replace('-', '_')}")
        p = sub.add_parser(name, help=help_text, description=mod.__doc__ or help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return run_entry(f"aslfs {args.command}", lambda: args._run(args))


if __name__ == "__main__":
    sys.exit(main())
