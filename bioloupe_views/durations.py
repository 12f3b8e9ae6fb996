"""PostgreSQL durations as the options take them (500ms, 30s, 5min, 90d; a bare number is
milliseconds, as in postgresql.conf): one grammar for validating and converting them."""

from __future__ import annotations

import re
from decimal import Decimal

PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400}
_MILLISECONDS = {"us": Decimal("0.001"), "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000,
                 "d": 86_400_000}
_NAMES = {"us": "microseconds", "ms": "milliseconds", "s": "seconds", "min": "minutes",
          "h": "hours", "d": "days"}


def seconds(duration: str) -> float:
    number, unit = PATTERN.match(duration).groups()
    return float(number) * _SECONDS[unit or "ms"]


def interval(duration: str) -> str:
    """As PostgreSQL's interval input: 90d -> '90 days'."""
    number, unit = PATTERN.match(duration).groups()
    return f"{number} {_NAMES[unit or 'ms']}"


# statement_timeout and lock_timeout are ints of milliseconds in PostgreSQL: a larger value
# passes our grammar but is refused by set_config() on every mart.
SETTING_MAX_MS = 2_147_483_647
SETTING_MAX = "2147483647ms (about 24.8 days)"
# A retention is subtracted from now(): far beyond this it is outside PostgreSQL's interval
# or timestamp range, and nobody needs more.
RETENTION_MAX_DAYS = 36_500
RETENTION_MAX = "36500d (100 years)"


def milliseconds(duration: str) -> Decimal:
    """Exactly, so that a limit given in milliseconds is met to the unit."""
    number, unit = PATTERN.match(duration).groups()
    return Decimal(number) * _MILLISECONDS[unit or "ms"]


def over_setting_limit(duration: str) -> bool:
    """True when PostgreSQL cannot take `duration` as statement_timeout or lock_timeout."""
    return milliseconds(duration) > SETTING_MAX_MS


def over_retention_limit(duration: str) -> bool:
    return milliseconds(duration) > RETENTION_MAX_DAYS * _MILLISECONDS["d"]
