"""Shared wrapper of the DVC stage entry points: environment set-up and one-line errors."""

from __future__ import annotations

import sys
from typing import Callable

from aslfs import env


def stage_main(name: str, main: Callable[[list[str]], object], argv: list[str] | None = None) -> int:
    """Run a stage's ``main(argv)``; a user error prints ``stage <name>: error: <one line>`` and exits 2."""
    env.setup()
    from aslfs.errors import AslfsError, user_error_line

    try:
        main(sys.argv[1:] if argv is None else argv)
    except (AslfsError, OSError) as err:  # OSError: e.g. an output directory that cannot be written
        line = user_error_line(err)
        if line is None:
            raise
        print(f"stage {name}: error: {line}", file=sys.stderr)
        return 2
    return 0
