"""Deploy the pipeline flow to a Prefect server and serve it: ``python -m flows.deploy``.

With a server running (``aslfs servers start`` prints the ``PREFECT_API_URL`` to export), this registers the deployment
``aslfs-pipeline/aslfs`` and serves it from this process (Ctrl-C stops serving). Trigger a run from anywhere with::

    prefect deployment run 'aslfs-pipeline/aslfs' --param profile=demo --watch
    prefect deployment run 'aslfs-pipeline/aslfs' --param task_runner=dask --param max_workers=2 --watch
    prefect deployment run 'aslfs-pipeline/aslfs' --params '{"overrides": {"train.round2.epochs": 5}}' --watch

Each run executes the DVC pipeline of this checkout (``root``) as the pipeline flow does (flows/pipeline.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aslfs import env

DEPLOYMENT_NAME = "aslfs"


def main(argv: list[str] | None = None) -> None:
    env.setup()
    from flows.pipeline import pipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=DEPLOYMENT_NAME)
    parser.add_argument("--root", default=".", help="project checkout the runs work in (default: here)")
    parser.add_argument("--limit", type=int, default=1, help="concurrent runs served (DVC runs one at a time)")
    args = parser.parse_args(argv)
    pipeline.serve(
        name=args.name,
        parameters={"root": str(Path(args.root).resolve())},
        limit=args.limit,
        description="aslfs: dvc pipeline (select → … → export → evaluate) as a Prefect flow",
        tags=["aslfs"],
    )


if __name__ == "__main__":
    main()
