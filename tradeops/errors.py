"""Errors the CLI maps to exit codes: usage and configuration problems exit 2."""


class TradeopsError(Exception):
    """Base class for errors a user can act on; the message says what to fix."""

    exit_code = 1


class ConfigError(TradeopsError):
    """A configuration file, key or command-line value is wrong (exit 2)."""

    exit_code = 2


class StoreUnavailable(TradeopsError):
    """The ops store does not answer: nothing can be recorded, so nothing is started (exit 1)."""


class UsageError(TradeopsError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2
