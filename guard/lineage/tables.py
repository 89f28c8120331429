"""The lineage store's tables. Alembic migrations (guard/lineage/migrations) create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from guard.tallies import AGE_BOUNDS_S


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps them as naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("checked_at", UTCDateTime(), nullable=False),
    Column("policy_name", String(200), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("policy_hash", String(64), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("records", Integer, nullable=False),
    Column("allowed", Integer, nullable=False),
    Column("warned", Integer, nullable=False),
    Column("blocked", Integer, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("consumer", JSON, nullable=True),
    Index("ix_runs_pipeline_checked_at", "pipeline", "checked_at"),
    Index("ix_runs_checked_at", "checked_at"),
)

run_records = Table(
    "run_records",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("record_id", Text, nullable=False),
    Column("object", Text, nullable=True),
    Column("key", Text, nullable=True),
    Column("source", Text, nullable=True),
    Column("observed_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=True),
    Column("content_hash", String(32), nullable=True),
    Column("age_s", Float, nullable=True),
    Column("action", String(8), nullable=False),
    Column("reasons", Text, nullable=False),
    Column("explanations", JSON, nullable=True),
    PrimaryKeyConstraint("run_id", "position"),
    Index("ix_run_records_entity", "object", "key"),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("object", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("learned_from", String(16), nullable=False),
    Column("learned_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("object", "key"),
)

heartbeats = Table(
    "heartbeats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("synced_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("writer", Text, nullable=False),  # the sync job that reported; "" when unnamed
    Index("ix_heartbeats_source_object_synced_at", "source", "object", "synced_at"),
    Index("ix_heartbeats_received_at", "received_at"),
)

consumption = Table(
    "consumption",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("model", Text, nullable=False),
    Column("call_id", Text, nullable=True),
    Column("linked_at", UTCDateTime(), nullable=False),
    Column("extra", JSON, nullable=True),
    Index("ix_consumption_run_id", "run_id"),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("published_by", String(200), nullable=False),
    Column("published_at", UTCDateTime(), nullable=False),
)

run_tallies = Table(
    "run_tallies",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("checked_at", UTCDateTime(), nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("source", Text, nullable=True),
    Column("object", Text, nullable=True),
    Column("records", Integer, nullable=False),
    Column("allowed", Integer, nullable=False),
    Column("warned", Integer, nullable=False),
    Column("blocked", Integer, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("age_buckets", JSON, nullable=False),
    Column("age_max_s", Float, nullable=True),
    Column("age_sum_s", Float, nullable=False),
    Index("ix_run_tallies_checked_at", "checked_at"),
    Index("ix_run_tallies_point_checked_at", "source", "object", "checked_at"),
    Index("ix_run_tallies_run_id", "run_id"),  # a pruned run's tallies go with it
)

point_states = Table(
    "point_states",
    metadata,
    Column("source", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("evaluated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("source", "object"),
)

state_changes = Table(
    "state_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("previous", String(16), nullable=True),
    Column("state", String(16), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("findings", JSON, nullable=False),
    Index("ix_state_changes_at", "at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("open_key", Text, nullable=True, unique=True),  # "source/object" while open: one open per point
    Column("breaches", JSON, nullable=False),
    Column("findings", JSON, nullable=False),
    Column("figures", JSON, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("detected_at", UTCDateTime(), nullable=False),
    Column("acknowledged_at", UTCDateTime(), nullable=True),
    Column("acknowledged_by", Text, nullable=True),
    Column("recovered_at", UTCDateTime(), nullable=True),
    Column("recovery_objective_s", Float, nullable=True),
    Column("impact", JSON, nullable=True),  # its impact, kept before a prune removes the runs it was counted from
    Index("ix_incidents_detected_at", "detected_at"),
)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("change_id", Integer, ForeignKey("state_changes.id", ondelete="CASCADE"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("failed_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("change_id", "channel", name="uq_alert_outbox_change_channel"),
    Index("ix_alert_outbox_pending", "delivered_at", "failed_at", "next_attempt_at"),
)

receipts = Table(
    "receipts",
    metadata,
    # The answer to a request a caller may repeat (HTTP Idempotency-Key), kept so that a repeat gets it again.
    Column("scope", Text, nullable=False),  # whose key it is (the API key's name)
    Column("key", Text, nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("status", Integer, nullable=True),
    Column("media_type", Text, nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("run_id", String(64), nullable=True),
    PrimaryKeyConstraint("scope", "key"),
    Index("ix_receipts_claimed_at", "claimed_at"),
)

store_probes = Table(
    "store_probes",
    metadata,
    # One row per process that asked whether the store can be written (readiness probes write here).
    Column("prober", Text, primary_key=True),
    Column("probed_at", UTCDateTime(), nullable=False),
)

#: The age histogram's buckets as columns of a rollup (guard.tallies.AGE_BOUNDS_S, then one for everything older).
AGE_BUCKET_COLUMNS = tuple(f"age_b{position:02d}" for position in range(len(AGE_BOUNDS_S) + 1))


def _rollup_tables(suffix: str) -> tuple[Table, Table]:
    """The tallies of every run checked in one span (its start in `minute`) summed per integration point,
    and the records that carried each reason code."""
    totals = Table(
        f"tally_rollups{suffix}",
        metadata,
        Column("minute", UTCDateTime(), nullable=False),  # the start of the span (UTC)
        Column("point", Text, nullable=False),  # JSON [source, object] (either may be null): the key
        Column("source", Text, nullable=True),
        Column("object", Text, nullable=True),
        Column("runs", Integer, nullable=False),
        Column("records", Integer, nullable=False),
        Column("allowed", Integer, nullable=False),
        Column("warned", Integer, nullable=False),
        Column("blocked", Integer, nullable=False),
        Column("age_max_s", Float, nullable=True),
        Column("age_sum_s", Float, nullable=False),
        *(Column(name, Integer, nullable=False) for name in AGE_BUCKET_COLUMNS),
        PrimaryKeyConstraint("minute", "point"),
    )
    reasons = Table(
        f"rollup_reasons{suffix}",
        metadata,
        Column("minute", UTCDateTime(), nullable=False),
        Column("point", Text, nullable=False),
        Column("code", String(64), nullable=False),
        Column("records", Integer, nullable=False),
        PrimaryKeyConstraint("minute", "point", "code"),
    )
    return totals, reasons


# What health reads: windows in whole hours from the hourly tables, their edges from the per-minute ones.
tally_rollups, rollup_reasons = _rollup_tables("")  # per UTC minute
tally_rollups_hourly, rollup_reasons_hourly = _rollup_tables("_hourly")  # per UTC hour

entity_sightings = Table(
    "entity_sightings",
    metadata,
    # When each entity was last checked through each source: distinct entities over a window by an index range.
    Column("source", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("source", "object", "key"),
    Index("ix_entity_sightings_last_seen", "last_seen"),  # what a prune removes
    Index("ix_entity_sightings_point_last_seen", "source", "object", "last_seen"),  # what health counts
)

writer_syncs = Table(
    "writer_syncs",
    metadata,
    # The newest sync each writer reported per (source, object): the lag without reading every heartbeat.
    Column("source", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("writer", Text, nullable=False),
    Column("synced_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("source", "object", "writer"),
)

prune_horizons = Table(
    "prune_horizons",
    metadata,
    # How far back each kind of history was pruned: what came before `pruned_before` is gone on purpose.
    Column("kind", String(32), primary_key=True),
    Column("pruned_before", UTCDateTime(), nullable=False),
)
