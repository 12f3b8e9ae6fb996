"""A mart's checks wait, within a run, for the earlier marts they read (the refreshes still
run side by side): the audit sees their new rows, and the snapshot the checks start from is
kept, so --changed-only does not refresh the mart again in the next run. Run history is kept
both ways.

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
