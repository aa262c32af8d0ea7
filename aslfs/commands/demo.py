"""``aslfs demo``: run the whole pipeline (``dvc repro``) on the configured data and print the summary."""

from aslfs.pipeline import run_demo


def add_arguments(parser):
    parser.add_argument("--root", default=".", help="project root (default: current directory)")
    parser.add_argument("--force", action="store_true", help="rerun every stage even if nothing changed")


def run(args) -> int:
    run_demo(args.root, force=args.force)
    return 0
