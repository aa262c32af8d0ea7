"""Error types. Every error a user can cause is an :class:`AslfsError` whose message is one line naming the input
(file, sequence, parameter) and the problem; entry points print it without a traceback and exit non-zero."""


class AslfsError(Exception):
    """Base class of the errors that entry points report as one clear line."""


class DataError(AslfsError):
    """Input data that cannot be used: missing file, missing column, wrong dtype, unknown sequence, bad phrase..."""


class ConfigError(AslfsError):
    """A parameter file or override that does not validate."""


def os_error_line(err: BaseException) -> str | None:
    """One line for a filesystem error the user can fix (an :class:`OSError` naming a file: permission denied, not a
    directory, read-only file system, disk full...): ``"<path>: <reason>"``. None for anything else, an OSError naming
    no file included (then it is not a user's input problem and keeps its traceback)."""
    import os

    if not isinstance(err, OSError) or err.filename is None:
        return None
    reason = err.strerror or type(err).__name__
    if isinstance(err, FileExistsError) and not os.path.isdir(err.filename):
        reason = "exists and is not a directory"
    return f"{err.filename}: {reason}"


def user_error_line(err: BaseException) -> str | None:
    """The one line to show for an error the user caused (:class:`AslfsError`, or an :class:`OSError` naming a file,
    see :func:`os_error_line`); None for anything else (a bug: it keeps its traceback)."""
    if isinstance(err, AslfsError):
        return str(err)
    return os_error_line(err)
