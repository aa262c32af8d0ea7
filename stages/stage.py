"""The stage declaration: each pipeline stage is declared once, with :func:`stage`, and run three ways from that one
declaration — ``python -m stages.<name>`` (what ``dvc.yaml`` runs; the body runs as the Prefect flow
``aslfs-<name>``), ``aslfs <name>`` (the command line, :mod:`stages.cli`; no Prefect) and :meth:`Stage.call` (tests,
scripts). A declaration holds the stage's arguments (defaults = the paths ``dvc.yaml`` uses), the ``params.yaml``
sections it reads (loaded once, typed, by :func:`aslfs.config.load_params`) and its body, which calls the library
and returns the line(s) to print.

:func:`run_entry` is the one error handler of every entry point (stages and the other commands alike): environment
set-up, SIGTERM as an interruption, and a user error (:class:`aslfs.errors.AslfsError`, or a filesystem error naming
a file) printed as one line ``<prefix>: error: <message>`` with exit status 2 — no traceback.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from aslfs import env
from aslfs.errors import AslfsError, user_error_line

#: Every declared stage by name (filled as ``stages.<name>`` modules are imported; :func:`stages.cli.load_stages`).
REGISTRY: dict[str, Stage] = {}


def arg(*names: str, **options) -> tuple[tuple[str, ...], dict]:
    """One argument of a stage, as for ``argparse.ArgumentParser.add_argument``."""
    return names, options


@dataclass(frozen=True)
class Stage:
    name: str
    help: str
    body: Callable[..., str]
    arguments: tuple = ()
    #: ``params.yaml`` sections the body receives as keyword arguments (none: the stage has no ``--params``).
    sections: tuple[str, ...] = ()
    doc: str = field(default="", repr=False)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        for names, options in self.arguments:
            parser.add_argument(*names, **options)
        if self.sections:
            parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=f"python -m stages.{self.name}", description=self.doc or self.help,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_arguments(parser)
        return parser

    def run(self, args: argparse.Namespace, flow: bool = False) -> str:
        """Load the declared params sections and run the body (as a Prefect flow with ``flow``); returns its text."""
        sections = {}
        if self.sections:
            from aslfs.config import load_params

            params = load_params(args.params)
            sections = {name: getattr(params, name) for name in self.sections}
        if flow:
            return run_as_flow(self.name, self.body, args, **sections)
        return self.body(args, **sections)

    def call(self, argv: list[str], flow: bool = False) -> str:
        """Parse ``argv`` and run (errors are raised, not printed)."""
        return self.run(self.parser().parse_args([str(a) for a in argv]), flow=flow)

    def main(self, argv: list[str] | None = None) -> int:
        """The DVC entry point: ``python -m stages.<name> ARGS``; exit status 0, 2 (user error) or 130."""
        args = self.parser().parse_args(sys.argv[1:] if argv is None else argv)
        return run_entry(f"stage {self.name}", lambda: print(self.run(args, flow=True)))


def stage(name: str, help: str, arguments: tuple = (), sections: tuple[str, ...] = (), doc: str = ""):
    """Declare the decorated function ``body(args, **sections) -> str`` as the stage ``name`` (registered)."""

    def declare(body: Callable[..., str]) -> Stage:
        declared = Stage(name, help, body, tuple(arguments), tuple(sections), doc)
        REGISTRY[name] = declared
        return declared

    return declare


def run_entry(prefix: str, fn: Callable[[], Any]) -> int:
    """Run an entry point's work: environment defaults, SIGTERM (DVC or Prefect cancelling) raised as an
    interruption so that runs end cleanly, and one-line user errors ``<prefix>: error: <line>`` (exit 2)."""
    env.setup()

    def terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        code = fn()
        return int(code) if isinstance(code, int) else 0
    except (AslfsError, OSError) as err:  # OSError: e.g. an output directory that cannot be written
        line = user_error_line(err)
        if line is None:
            raise
        print(f"{prefix}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


class StageFailed(AslfsError):
    """A flow run that Prefect marked Failed with a one-line message."""


def run_as_flow(name: str, fn: Callable[..., Any], /, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` as the Prefect flow ``aslfs-<name>``.

    With ``PREFECT_API_URL`` set (``aslfs demo`` starts a local server for its run; ``aslfs servers start`` for
    browsing) the runs appear in that server's UI; without it Prefect runs them on a temporary local server. A user
    error marks the flow run Failed with its one-line message (no traceback) and is raised again to the caller.
    """
    from prefect import flow
    from prefect.states import Failed

    env.quiet_prefect_console()

    @functools.wraps(fn)
    def body(*a, **kw):
        try:
            return fn(*a, **kw)
        except (AslfsError, OSError) as err:  # OSError naming a file (e.g. an unwritable output): one line too
            line = user_error_line(err)
            if line is None:
                raise
            return Failed(message=line)

    wrapped = flow(name=f"aslfs-{name}", log_prints=True, validate_parameters=False, persist_result=False)(body)
    state = wrapped(*args, **kwargs, return_state=True)
    if state.is_failed():
        try:
            return state.result()  # re-raises a non-user exception with its traceback
        except AslfsError:
            raise
        except Exception as err:
            if state.message and "Flow run encountered an exception" not in state.message:
                raise StageFailed(state.message) from None
            raise err
    return state.result()
