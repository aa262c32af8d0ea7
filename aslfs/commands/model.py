"""``aslfs model --preset NAME [--set FIELD=VALUE ...]``: build a model preset and print its summary.

The last line of the output is ``trainable parameters: N``.
"""

from __future__ import annotations


def add_arguments(parser):
    from aslfs.models.config import PRESETS

    parser.add_argument("--preset", default="kaggle-1st-round2", choices=sorted(PRESETS),
                        help="model preset (default: kaggle-1st-round2)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a ModelConfig field (YAML value, e.g. --set num_layers=4); repeatable")


def run(args) -> int:
    from aslfs.commands import model_overrides
    from aslfs.models.fingerspeller import describe_model

    overrides = model_overrides(args.overrides)
    print(describe_model(args.preset, **overrides))
    return 0
