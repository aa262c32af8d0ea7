"""Error types. Every error a user can cause is an :class:`AslfsError` whose message is one line naming the input
(file, sequence, parameter) and the problem; entry points print it without a traceback and exit non-zero."""


class AslfsError(Exception):
    """Base class of the errors that entry points report as one clear line."""


class DataError(AslfsError):
    """Input data that cannot be used: missing file, missing column, wrong dtype, unknown sequence, bad phrase..."""


class ConfigError(AslfsError):
    """A parameter file or override that does not validate."""
