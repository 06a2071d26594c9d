"""Job items carry the token of the claim that may write their result.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add job_items.claim_token."""
    with op.batch_alter_table("job_items") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(32)))


def downgrade() -> None:
    """Drop job_items.claim_token."""
    with op.batch_alter_table("job_items") as batch:
        batch.drop_column("claim_token")
