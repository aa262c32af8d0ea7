"""``aslfs synth OUT_DIR --sequences N --seed S [--params params.yaml]``: write the embedded synthetic dataset."""

from __future__ import annotations

import json


def add_arguments(parser):
    parser.add_argument("out_dir", help="folder to (re)write in the competition format")
    parser.add_argument("--sequences", type=int, help="number of sequences (default: params or 3000)")
    parser.add_argument("--seed", type=int, help="random seed (default: params or 0)")
    parser.add_argument("--params", help="take the other synth settings from this params.yaml (its synth section)")
    parser.add_argument("--workers", type=int, help="worker processes (the output does not depend on it)")


def run(args) -> int:
    from pydantic import ValidationError

    from aslfs.config import SynthParams, load_params
    from aslfs.data.synth import generate
    from aslfs.errors import ConfigError

    base = load_params(args.params).synth.model_dump() if args.params else {}
    overrides = {k: v for k, v in (("sequences", args.sequences), ("seed", args.seed), ("workers", args.workers))
                 if v is not None}
    try:
        params = SynthParams.model_validate({**base, **overrides})
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(f"synth.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    print(json.dumps(generate(args.out_dir, params), indent=1))
    return 0
