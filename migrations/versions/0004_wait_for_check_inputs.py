"""A mart waits, within a run, for the earlier marts its checks read: its audit sees their
new rows, and --changed-only does not refresh it again in the next run. Routines only; run
history is kept both ways.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.change_project_schema(from_version=3, to_version=4)


def downgrade() -> None:
    op.change_project_schema(from_version=4, to_version=3)
