"""The formatter alembic.ini's logging uses: each message on one line.

Alembic logs each revision with its docstring's first paragraph, which often spans lines; a
DBA reading a migration's progress (or a script filtering it) expects one line per step.
"""

from __future__ import annotations

import logging
import re

_LINE_BREAK = re.compile(r"\s*\n\s*")


class OneLineFormatter(logging.Formatter):
    """A logging.Formatter whose messages have their line breaks folded into spaces (a
    logged exception's traceback keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _LINE_BREAK.sub(" ", record.message.strip())
        return super().formatMessage(record)
