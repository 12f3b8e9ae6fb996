"""One refresh engine in the database; checks compiled per mart version.

The run log becomes the run's queue (start_run, claim_next, refresh_mart, finish_run), which
the CLI, pg_cron and every other client drive; each mart's checks become views that this
migration's role creates and owns. Run history is kept both ways.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.change_project_schema(from_version=1, to_version=2)


def downgrade() -> None:
    op.change_project_schema(from_version=2, to_version=1)
