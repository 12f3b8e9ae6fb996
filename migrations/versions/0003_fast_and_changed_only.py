"""Faster audits (batched column checks, checks an index implies) and a source change log
for refreshing only what changed. Run history is kept both ways.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.change_project_schema(from_version=2, to_version=3)


def downgrade() -> None:
    op.change_project_schema(from_version=3, to_version=2)
