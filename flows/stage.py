"""Each DVC stage entry runs its library call as a Prefect flow named ``aslfs-<stage>``.

With ``PREFECT_API_URL`` set (``aslfs demo`` starts a local server for its run; ``aslfs servers start`` for browsing)
the runs appear in that server's UI; without it Prefect runs them on a temporary local server. A user error
(:class:`aslfs.errors.AslfsError`) marks the flow run Failed with its one-line message — no traceback — and is raised
again to the stage entry, which prints it and exits non-zero.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from aslfs.errors import AslfsError, user_error_line


class StageFailed(AslfsError):
    pass


def run_as_flow(stage: str, fn: Callable[..., Any], /, *args, **kwargs) -> Any:
    from prefect import flow
    from prefect.states import Failed

    @functools.wraps(fn)
    def body(*a, **kw):
        try:
            return fn(*a, **kw)
        except (AslfsError, OSError) as err:  # OSError naming a file (e.g. an unwritable output): one line too
            line = user_error_line(err)
            if line is None:
                raise
            return Failed(message=line)

    wrapped = flow(name=f"aslfs-{stage}", log_prints=True, validate_parameters=False, persist_result=False)(body)
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
