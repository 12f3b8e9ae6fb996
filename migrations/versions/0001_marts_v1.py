"""The five marts, v1, and the project schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Check the sources first, so a wrong database gets one message and no objects."""
    op.check_source_contract()
    op.create_project_schema(version=1)
    op.create_materialized_view("mv_development_programs", version=1)
    op.create_materialized_view("mv_drug_trials", version=1)
    op.create_materialized_view("mv_efficacy_evidence", version=1)
    op.create_materialized_view("mv_competitive_landscape", version=1)
    op.create_materialized_view("mv_drug_pipeline", version=1)


def downgrade() -> None:
    """Dependents first; the sources are never touched."""
    op.drop_materialized_view("mv_drug_pipeline")
    op.drop_materialized_view("mv_competitive_landscape")
    op.drop_materialized_view("mv_efficacy_evidence")
    op.drop_materialized_view("mv_drug_trials")
    op.drop_materialized_view("mv_development_programs")
    op.drop_project_schema()
