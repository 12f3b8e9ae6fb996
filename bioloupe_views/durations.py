"""One grammar for every duration the tool takes (options, environment variables, resource
settings) and prints: 500ms, 90s, 10m, 1h30m, 2d, or any combination of us, ms, s, m (or
min), h and d. A bare number is seconds, everywhere: the unit a person means when typing
`--wait 10` or `--statement-timeout 10` (PostgreSQL's own bare milliseconds surprised
users: every mart failed with a 10 ms timeout). What the tool prints (`format`) parses back.

Values are converted here, for each consumer: seconds for waits and ages, PostgreSQL's
setting form for statement_timeout and lock_timeout (`setting`), an interval literal for the
run log's retention (`interval`)."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_NUMBER = r"\d+(?:\.\d+)?"
# Longest unit first where one is a prefix of another (ms and min before m).
_UNIT = r"us|ms|min|s|m|h|d"
_PART = re.compile(rf"({_NUMBER})\s*({_UNIT})")
PATTERN = re.compile(rf"^\s*(?:{_NUMBER}|(?:{_NUMBER}\s*(?:{_UNIT})\s*)+)\s*$")
EXAMPLES = "500ms, 90s, 10m, 1h30m, 2d (a bare number is seconds)"

_SECONDS = {"us": Decimal("0.000001"), "ms": Decimal("0.001"), "s": Decimal(1),
            "m": Decimal(60), "min": Decimal(60), "h": Decimal(3600), "d": Decimal(86400)}
_INTERVAL_UNITS = {"us": "microseconds", "ms": "milliseconds", "s": "seconds", "m": "minutes",
                   "min": "minutes", "h": "hours", "d": "days"}

# statement_timeout and lock_timeout are ints of milliseconds in PostgreSQL: a larger value
# would pass the grammar but be refused by set_config() on every mart.
SETTING_MAX_MS = 2_147_483_647
SETTING_MAX = "2147483647ms (about 24.8 days)"
# A retention or an age is subtracted from now(): far beyond this it is outside PostgreSQL's
# interval or timestamp range, and nobody needs more.
RETENTION_MAX_DAYS = 36_500
RETENTION_MAX = "36500d (100 years)"


def is_duration(text: str) -> bool:
    return isinstance(text, str) and PATTERN.match(text) is not None


def _parts(text: str) -> list[tuple[Decimal, str]]:
    if not is_duration(text):
        raise ValueError(f"{text!r} is not a duration; use e.g. {EXAMPLES}")
    stripped = text.strip()
    if re.fullmatch(_NUMBER, stripped):
        return [(Decimal(stripped), "s")]
    return [(Decimal(number), unit) for number, unit in _PART.findall(stripped)]


def total_seconds(text: str) -> Decimal:
    """Exactly, so that a limit given in milliseconds is met to the unit."""
    return sum((number * _SECONDS[unit] for number, unit in _parts(text)), Decimal(0))


def seconds(text: str) -> float:
    return float(total_seconds(text))


def milliseconds(text: str) -> Decimal:
    return total_seconds(text) * 1000


def setting(text: str) -> str:
    """As PostgreSQL takes statement_timeout or lock_timeout: whole milliseconds, rounded up
    so that a short non-zero timeout never becomes 0 (which PostgreSQL reads as none)."""
    return f"{math.ceil(milliseconds(text))}ms"


def interval(text: str) -> str:
    """As PostgreSQL's interval input: 90d -> '90 days', 1h30m -> '1 hours 30 minutes'."""
    return " ".join(f"{number} {_INTERVAL_UNITS[unit]}" for number, unit in _parts(text))


def over_setting_limit(text: str) -> bool:
    """True when PostgreSQL cannot take `text` as statement_timeout or lock_timeout."""
    return milliseconds(text) > SETTING_MAX_MS


def over_retention_limit(text: str) -> bool:
    return total_seconds(text) > RETENTION_MAX_DAYS * _SECONDS["d"]


def format(value: float | None) -> str:   # noqa: A001 - durations.format reads well
    """Seconds in the grammar's own forms, the two largest units: 2m37s, 1h30m, 2d3h, 500ms."""
    if value is None:
        return "-"
    value = max(0.0, float(value))
    if value < 1:
        return f"{round(value * 1000)}ms" if value else "0s"
    whole = int(value)
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60),
                                     ("m", 60, "s", 1)):
        if whole >= size:
            rest = (whole % size) // subsize
            return f"{whole // size}{unit}" + (f"{rest}{sub}" if rest else "")
    return f"{whole}s"
