"""Errors a user can act on.

``CaptuneError`` carries a message that says what was wrong, where (file, line, key) and
what to do. The command line prints it without a traceback and exits with status 2.
"""


class CaptuneError(Exception):
    """A problem with the user's input or environment, explained in the message."""


class ConfigError(CaptuneError):
    """A configuration file or override that does not match its schema."""


class DataError(CaptuneError):
    """A dataset that cannot be read at all (single bad rows are rejected, not raised)."""


class ModelNotFoundError(CaptuneError):
    """Weights that are not on this machine and cannot be fetched."""
