"""Bindings and change tracking no role can subvert (project schema v6).

The change log's per-transaction memo holds the writing transaction's id, so a value a
session brings along cannot silence it; each tracked source has a recorded start
(source_tracking), so writes made while it was not tracked make its marts count as changed;
refresh_mart() waits for an upstream mart on live state only and gives up when its run is
gone; refresh_all() runs its transactions at read committed. The project's check views are
reinstalled (and verified, as every view the project creates now is), and any mart that an
earlier migration bound to an object some role had planted is rebuilt at its installed
version, bound to PostgreSQL's own objects. Run history is untouched both ways.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.change_project_schema(from_version=5, to_version=6)
    op.rebind_materialized_views()


def downgrade() -> None:
    op.change_project_schema(from_version=6, to_version=5)
