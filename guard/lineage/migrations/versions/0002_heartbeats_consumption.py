"""Sync heartbeats per integration point, and consumption: which model calls used which runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from guard.lineage.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_heartbeats_source_object_synced_at", "heartbeats", ["source", "object", "synced_at"])
    op.create_table(
        "consumption",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("call_id", sa.Text, nullable=True),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.Column("extra", sa.JSON, nullable=True),
    )
    op.create_index("ix_consumption_run_id", "consumption", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_consumption_run_id", table_name="consumption")
    op.drop_table("consumption")
    op.drop_index("ix_heartbeats_source_object_synced_at", table_name="heartbeats")
    op.drop_table("heartbeats")
