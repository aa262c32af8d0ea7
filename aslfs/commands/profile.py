"""``aslfs profile NAME [--raw-dir DIR]``: rewrite params.yaml from a profile (demo, ci, kaggle-1st)."""

from aslfs.profiles import PROFILES, write_params


def add_arguments(parser):
    parser.add_argument("name", choices=sorted(PROFILES), help="profile to write")
    parser.add_argument("--raw-dir", help="competition-format data directory (sets data.raw_dir)")
    parser.add_argument("--out", default="params.yaml", help="file to write (default: params.yaml)")


def run(args) -> int:
    path = write_params(args.out, args.name, args.raw_dir)
    print(f"{path}: profile {args.name} written; run `dvc repro` (or `make demo`)")
    return 0
