"""Body of `GET /v1/health`: SLA state per integration point, with the figures behind it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from guard.health import HealthState


class ReasonCount(BaseModel):
    """How many records of the window were blocked or warned for one reason."""

    code: str
    records: int


class WriterOut(BaseModel):
    """One sync job (writer) of an integration point and its newest sync."""

    writer: str = Field(description="The writer's name as its heartbeats give it; empty when unnamed.")
    last_sync: datetime
    lag_s: float


class PointHealthOut(BaseModel):
    """One integration point (source, object) against its SLA."""

    source: str
    object: str
    team: str | None = Field(description="Who to talk to about the source.")
    has_sla: bool = Field(description="Whether the policy declares an SLA for this point; without one, no state.")
    state: HealthState | None = Field(description="healthy, degraded, breached or no_data; null without an SLA.")
    breaches: list[str] = Field(description="What is breached: lag, deadline, block_rate.")
    findings: list[str] = Field(description="What is wrong, in words; empty when healthy.")
    window_s: float = Field(description="The window the figures cover, in seconds (the SLA's `window`).")
    last_sync: datetime | None = Field(description="The newest sync the source reported (heartbeat).")
    lag_s: float | None = Field(description="The freshness lag, in seconds: the stalest writer's, or the p95 age.")
    lag_from: str | None = Field(description="What the lag is measured from: heartbeats or records.")
    max_lag_s: float | None = Field(description="The SLA's `max_lag`, in seconds.")
    writers: list[WriterOut] = Field(
        description="Every writer that reported within retire_writers_after (7 days unless set), stalest first."
    )
    retired_writers: list[WriterOut] = Field(
        default_factory=list, description="Writers silent longer than retire_writers_after: not counted in the lag."
    )
    entities: int | None = Field(description="Distinct entity keys checked in the window (coverage).")
    records: int = Field(description="Records checked in the window.")
    warned: int
    blocked: int
    block_rate: float | None = Field(description="blocked / records over the window; null without records.")
    max_block_rate: float | None = Field(description="The SLA's `max_block_rate`.")
    burn_rate_long: float | None = Field(description="Block rate / max_block_rate over the last quarter window.")
    burn_rate_short: float | None = Field(description="Block rate / max_block_rate over the last 1/48 window.")
    reasons: list[ReasonCount] = Field(description="Reasons of the window's records, most frequent first.")
    age_p50_s: float | None = Field(description="Median age of the window's records (estimated from a histogram).")
    age_p95_s: float | None = Field(description="95th percentile age of the window's records (estimated).")
    max_age_s: float | None = Field(description="The object's freshness limit (`max_age`), in seconds.")
    recovery_s: float | None = Field(description="The SLA's `recovery` objective, in seconds.")
    paused: bool = Field(description="Outside the schedule's active minutes: the lag is not judged.")
    due: datetime | None = Field(description="The latest `expected_by` deadline passed.")
    next_due: datetime | None = Field(description="The next `expected_by` deadline.")


class HealthReport(BaseModel):
    """SLA state per integration point: every SLA the policy declares, then the other allowed points."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "checked_at": "2026-11-22T12:00:00+00:00",
                    "policy": {"name": "support-assistant", "version": 1},
                    "definition": "breached: the last sync is older than max_lag, or ...",
                    "points": [
                        {
                            "source": "sap", "object": "customer", "team": "finance-systems", "has_sla": True,
                            "state": "breached",
                            "breaches": ["lag"], "findings": ["sap → customer: behind by 47m; agreed 15m"],
                            "window_s": 3600.0, "last_sync": "2026-11-22T11:13:00+00:00", "lag_s": 2820.0,
                            "lag_from": "heartbeats", "max_lag_s": 900.0,
                            "writers": [{"writer": "sap-customer-sync", "last_sync": "2026-11-22T11:13:00+00:00",
                                         "lag_s": 2820.0}],
                            "entities": 940, "records": 1200, "warned": 30, "blocked": 12, "block_rate": 0.01,
                            "max_block_rate": 0.02, "burn_rate_long": 0.8, "burn_rate_short": 0.0,
                            "reasons": [{"code": "STALE", "records": 12}],
                            "age_p50_s": 310.0, "age_p95_s": 1700.0, "max_age_s": 3600.0, "recovery_s": 1800.0,
                            "paused": False, "due": None, "next_due": None,
                        }
                    ],
                }
            ]
        }
    )  # fmt: skip

    checked_at: datetime
    policy: dict[str, str | int] = Field(description="The policy in force: name and version.")
    definition: str = Field(description="How the states are decided, in words.")
    points: list[PointHealthOut]
