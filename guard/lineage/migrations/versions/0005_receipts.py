"""Receipts: the answers to requests a caller may repeat safely (Idempotency-Key); store probes (readiness).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from guard.lineage.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("media_type", sa.Text, nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key"),
    )
    op.create_index("ix_receipts_claimed_at", "receipts", ["claimed_at"])
    op.create_table(
        "store_probes",
        sa.Column("prober", sa.Text, primary_key=True),
        sa.Column("probed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_probes")
    op.drop_index("ix_receipts_claimed_at", table_name="receipts")
    op.drop_table("receipts")
