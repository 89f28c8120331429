"""Runs, their per-record decisions, and per-entity supersession watermarks.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from guard.lineage.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("policy_name", sa.String(200), nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("allowed", sa.Integer, nullable=False),
        sa.Column("warned", sa.Integer, nullable=False),
        sa.Column("blocked", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("consumer", sa.JSON, nullable=True),
    )
    op.create_index("ix_runs_pipeline_checked_at", "runs", ["pipeline", "checked_at"])
    op.create_index("ix_runs_checked_at", "runs", ["checked_at"])
    op.create_table(
        "run_records",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=True),
        sa.Column("key", sa.Text, nullable=True),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("observed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.Column("content_hash", sa.String(32), nullable=True),
        sa.Column("age_s", sa.Float, nullable=True),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("explanations", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "position"),
    )
    op.create_index("ix_run_records_entity", "run_records", ["object", "key"])
    op.create_table(
        "watermarks",
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("learned_from", sa.String(16), nullable=False),
        sa.Column("learned_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("object", "key"),
    )


def downgrade() -> None:
    op.drop_table("watermarks")
    op.drop_index("ix_run_records_entity", table_name="run_records")
    op.drop_table("run_records")
    op.drop_index("ix_runs_checked_at", table_name="runs")
    op.drop_index("ix_runs_pipeline_checked_at", table_name="runs")
    op.drop_table("runs")
