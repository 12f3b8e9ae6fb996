"""A publish strategy per mart (project schema v7).

Besides REFRESH ... CONCURRENTLY, a run may build a mart aside in a stage schema of its
own, audit it there with the same checks, and swap it in, with the marts that read it, in
one short transaction (`--strategy swap`), or choose per mart (`--strategy auto`) from the
share of rows its last concurrent refresh changed, which every refresh now records. The
retention of the run log keeps each mart's latest successful refresh. Run history is
untouched both ways; a downgrade first drops whatever a swap left aside.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.change_project_schema(from_version=6, to_version=7)


def downgrade() -> None:
    op.change_project_schema(from_version=7, to_version=6)
