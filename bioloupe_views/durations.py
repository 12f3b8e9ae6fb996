"""PostgreSQL durations as the options take them (500ms, 30s, 5min, 90d; a bare number is
milliseconds, as in postgresql.conf): one grammar for validating and converting them."""

from __future__ import annotations

import re

PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400}
_NAMES = {"us": "microseconds", "ms": "milliseconds", "s": "seconds", "min": "minutes",
          "h": "hours", "d": "days"}


def seconds(duration: str) -> float:
    number, unit = PATTERN.match(duration).groups()
    return float(number) * _SECONDS[unit or "ms"]


def interval(duration: str) -> str:
    """As PostgreSQL's interval input: 90d -> '90 days'."""
    number, unit = PATTERN.match(duration).groups()
    return f"{number} {_NAMES[unit or 'ms']}"
