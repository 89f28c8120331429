"""Published policy versions, and per-run tallies by integration point (for SLA health and the dashboard).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from guard.lineage.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "run_tallies",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("object", sa.Text, nullable=True),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("allowed", sa.Integer, nullable=False),
        sa.Column("warned", sa.Integer, nullable=False),
        sa.Column("blocked", sa.Integer, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("age_buckets", sa.JSON, nullable=False),
        sa.Column("age_max_s", sa.Float, nullable=True),
        sa.Column("age_sum_s", sa.Float, nullable=False),
    )
    op.create_index("ix_run_tallies_checked_at", "run_tallies", ["checked_at"])
    op.create_index("ix_run_tallies_point_checked_at", "run_tallies", ["source", "object", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_run_tallies_point_checked_at", table_name="run_tallies")
    op.drop_index("ix_run_tallies_checked_at", table_name="run_tallies")
    op.drop_table("run_tallies")
    op.drop_table("policy_versions")
