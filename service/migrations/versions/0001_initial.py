"""Initial tables: reference records, jobs, job items, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "reference_records",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("order_name", sa.String(128)), sa.Column("family", sa.String(128)),
        sa.Column("genus", sa.String(128)), sa.Column("species", sa.String(256)), sa.Column("bin", sa.String(64)),
        sa.Column("dna", sa.Text()), sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False), sa.Column("snapshot_id", sa.String(64)),
        sa.Column("created_at", TZ, nullable=False), sa.Column("updated_at", TZ, nullable=False))
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True), sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False), sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False), sa.Column("started_at", TZ), sa.Column("finished_at", TZ))
    op.create_table(
        "job_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False), sa.Column("specimen_id", sa.String(256), nullable=False),
        sa.Column("dna", sa.Text()), sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False), sa.Column("claimed_at", TZ),
        sa.Column("attempts", sa.Integer(), nullable=False), sa.Column("error", sa.Text()),
        sa.Column("result", sa.JSON()), sa.Column("finished_at", TZ),
        sa.UniqueConstraint("job_id", "position"))
    op.create_index("ix_job_items_job_status", "job_items", ["job_id", "status"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(128), nullable=False), sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ))


def downgrade() -> None:
    """Drop every table."""
    op.drop_index("ix_job_items_job_status", "job_items")
    for table in ("api_keys", "job_items", "jobs", "reference_records"):
        op.drop_table(table)
