"""``aslfs demo [--profile NAME]``: run the whole pipeline (``dvc repro``) and print the summary.

The demo is the ``demo`` profile (about 15 minutes on a 2-core CPU). params.yaml records which profile it holds
(``aslfs profile NAME`` writes it); when that is not the expected one the command refuses in one line instead of
starting another recipe (``kaggle-1st`` trains for days): ``--profile NAME`` says which profile you mean to run.
"""

from pathlib import Path

from aslfs.config import load_params
from aslfs.errors import ConfigError
from aslfs.pipeline import run_demo


def add_arguments(parser):
    parser.add_argument("--root", default=".", help="project root (default: current directory)")
    parser.add_argument("--profile", default="demo",
                        help="the profile params.yaml must hold to run (default: demo); e.g. --profile kaggle-1st")
    parser.add_argument("--force", action="store_true", help="rerun every stage even if nothing changed")
    parser.add_argument("--jobs", type=int, help="stages of one level run at once (default: pipeline.jobs)")


def run(args) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    path = Path(args.root) / "params.yaml"
    holds = load_params(path).profile
    if holds != args.profile:
        raise ConfigError(f"{path} holds profile {holds!r}, not {args.profile!r}: run `aslfs profile {args.profile}` "
                          f"first, or `aslfs demo --profile {holds}` to run it")
    run_demo(args.root, force=args.force, jobs=args.jobs)
    return 0
