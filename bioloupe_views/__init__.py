"""bioloupe-views: the bioloupe marts as PostgreSQL materialized views.

Data flow: SQL definitions (sql/) -> migrations (migrations/, ops.py) -> database ->
refresh (refresh.py) -> checks (checks.py) -> report (report.py).
"""

__version__ = "0.1.0"
