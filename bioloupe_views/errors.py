"""Errors the user can act on.

Every error the tool reports is one line that says what is wrong and what to do. Anything
raised as a `UserError` is printed that way by the CLI (exit code 2); everything else is a bug.
"""


class UserError(Exception):
    """A problem with the input or the environment; the message says how to fix it."""

    exit_code = 2


class ConfigError(UserError):
    """Missing or malformed settings (DSN, environment variables, options)."""


class ConnectError(UserError):
    """The database cannot be reached or refuses us."""


class NotMigratedError(UserError):
    """The project's objects are not in the database yet."""


class ContractError(UserError):
    """The source tables the marts read are missing tables or columns."""


class LockBusyError(UserError):
    """Another refresh holds the refresh lock. Not a usage error: exit code 1."""

    exit_code = 1


class ConnectionLostError(UserError):
    """The run's own connection (lock and run log) died mid-run. A failed run: exit code 1."""

    exit_code = 1
