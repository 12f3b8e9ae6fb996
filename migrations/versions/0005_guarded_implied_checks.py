"""A unique check on a key joined into text, with a text column before the last, stops
reading the mart: the mart's unique index implies it while that text holds no first
character of the separator after it, which the mart's one scan of its column checks now
counts (project schema v5). The check runs for real whenever the count is not 0, so its
failures are still dbt's. Run history is untouched both ways.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.change_project_schema(from_version=4, to_version=5)


def downgrade() -> None:
    op.change_project_schema(from_version=5, to_version=4)
