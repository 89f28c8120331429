"""Operations: heartbeat writers, the state of each integration point, state changes, incidents, alert outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from guard.lineage.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Heartbeats kept so far came from unnamed writers; the default fills them, then goes.
    with op.batch_alter_table("heartbeats") as batch:
        batch.add_column(sa.Column("writer", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("heartbeats") as batch:
        batch.alter_column("writer", server_default=None)
    op.create_table(
        "point_states",
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("evaluated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "object"),
    )
    op.create_table(
        "state_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("previous", sa.String(16), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
    )
    op.create_index("ix_state_changes_at", "state_changes", ["at"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("open_key", sa.Text, nullable=True, unique=True),
        sa.Column("breaches", sa.JSON, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.Text, nullable=True),
        sa.Column("recovered_at", UTCDateTime(), nullable=True),
        sa.Column("recovery_objective_s", sa.Float, nullable=True),
    )
    op.create_index("ix_incidents_detected_at", "incidents", ["detected_at"])
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Integer, sa.ForeignKey("state_changes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("failed_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.UniqueConstraint("change_id", "channel", name="uq_alert_outbox_change_channel"),
    )
    op.create_index("ix_alert_outbox_pending", "alert_outbox", ["delivered_at", "failed_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_pending", table_name="alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_index("ix_incidents_detected_at", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_state_changes_at", table_name="state_changes")
    op.drop_table("state_changes")
    op.drop_table("point_states")
    with op.batch_alter_table("heartbeats") as batch:
        batch.drop_column("writer")
