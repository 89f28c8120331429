"""Rollups and retention: per-minute tally rollups, entity sightings, the newest sync per writer, prune horizons.

Builds the rollups, sightings and writers from the history already kept, so health reads the same
figures before and after the upgrade.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from guard.lineage import _rollups
from guard.lineage.tables import AGE_BUCKET_COLUMNS, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Run tallies read (and rolled up) at a time while building the rollups from history.
_BATCH = 5000


def upgrade() -> None:
    for suffix in ("", "_hourly"):  # per minute, per hour
        op.create_table(
            f"tally_rollups{suffix}",
            sa.Column("minute", UTCDateTime(), nullable=False),
            sa.Column("point", sa.Text, nullable=False),
            sa.Column("source", sa.Text, nullable=True),
            sa.Column("object", sa.Text, nullable=True),
            sa.Column("runs", sa.Integer, nullable=False),
            sa.Column("records", sa.Integer, nullable=False),
            sa.Column("allowed", sa.Integer, nullable=False),
            sa.Column("warned", sa.Integer, nullable=False),
            sa.Column("blocked", sa.Integer, nullable=False),
            sa.Column("age_max_s", sa.Float, nullable=True),
            sa.Column("age_sum_s", sa.Float, nullable=False),
            *(sa.Column(name, sa.Integer, nullable=False) for name in AGE_BUCKET_COLUMNS),
            sa.PrimaryKeyConstraint("minute", "point"),
        )
        op.create_table(
            f"rollup_reasons{suffix}",
            sa.Column("minute", UTCDateTime(), nullable=False),
            sa.Column("point", sa.Text, nullable=False),
            sa.Column("code", sa.String(64), nullable=False),
            sa.Column("records", sa.Integer, nullable=False),
            sa.PrimaryKeyConstraint("minute", "point", "code"),
        )
    op.create_table(
        "entity_sightings",
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "object", "key"),
    )
    op.create_index("ix_entity_sightings_last_seen", "entity_sightings", ["last_seen"])
    op.create_index("ix_entity_sightings_point_last_seen", "entity_sightings", ["source", "object", "last_seen"])
    op.create_table(
        "writer_syncs",
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("writer", sa.Text, nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "object", "writer"),
    )
    op.create_table(
        "prune_horizons",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("pruned_before", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_run_tallies_run_id", "run_tallies", ["run_id"])
    op.create_index("ix_heartbeats_received_at", "heartbeats", ["received_at"])
    op.add_column("incidents", sa.Column("impact", sa.JSON, nullable=True))
    _build_from_history(op.get_bind())


def _build_from_history(conn: sa.Connection) -> None:
    """Roll up the run tallies kept so far, and note each entity's and writer's newest time, from history."""
    tallies = sa.table(
        "run_tallies", sa.column("checked_at", UTCDateTime()), sa.column("source"), sa.column("object"),
        sa.column("records"), sa.column("allowed"), sa.column("warned"), sa.column("blocked"),
        sa.column("reasons", sa.JSON()), sa.column("age_buckets", sa.JSON()), sa.column("age_max_s"),
        sa.column("age_sum_s"), sa.column("run_id"),
    )  # fmt: skip
    runs = sa.table("runs", sa.column("run_id"), sa.column("checked_at", UTCDateTime()))
    after: tuple[Any, ...] | None = None
    while True:  # keyset pages of runs in (checked_at, run_id) order: memory stays flat however long the history
        query = sa.select(runs.c.checked_at, runs.c.run_id).order_by(runs.c.checked_at, runs.c.run_id).limit(_BATCH)
        if after is not None:
            query = query.where(sa.tuple_(runs.c.checked_at, runs.c.run_id) > sa.tuple_(*after))
        page = conn.execute(query).all()
        if not page:
            break
        first, after = tuple(page[0]), tuple(page[-1])
        position = sa.tuple_(tallies.c.checked_at, tallies.c.run_id)
        rows = conn.execute(sa.select(tallies).where(position >= sa.tuple_(*first), position <= sa.tuple_(*after)))
        _rollups.add(conn, [dict(row) for row in rows.mappings()])
    conn.exec_driver_sql(
        "INSERT INTO entity_sightings (source, object, key, last_seen) "
        "SELECT r.source, r.object, r.key, max(runs.checked_at) FROM run_records r "
        "JOIN runs ON runs.run_id = r.run_id "
        "WHERE r.source IS NOT NULL AND r.object IS NOT NULL AND r.key IS NOT NULL "
        "GROUP BY r.source, r.object, r.key"
    )
    conn.exec_driver_sql(
        "INSERT INTO writer_syncs (source, object, writer, synced_at) "
        "SELECT source, object, writer, max(synced_at) FROM heartbeats GROUP BY source, object, writer"
    )


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("impact")
    op.drop_index("ix_heartbeats_received_at", table_name="heartbeats")
    op.drop_index("ix_run_tallies_run_id", table_name="run_tallies")
    op.drop_table("prune_horizons")
    op.drop_table("writer_syncs")
    op.drop_index("ix_entity_sightings_point_last_seen", table_name="entity_sightings")
    op.drop_index("ix_entity_sightings_last_seen", table_name="entity_sightings")
    op.drop_table("entity_sightings")
    for table in ("rollup_reasons_hourly", "tally_rollups_hourly", "rollup_reasons", "tally_rollups"):
        op.drop_table(table)
