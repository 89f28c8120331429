"""Body of `GET /v1/health`: SLA state per integration point, with the figures behind it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from guard.health import HealthState


class ReasonCount(BaseModel):
    """How many records of the window were blocked or warned for one reason."""

    code: str
    records: int


class PointHealthOut(BaseModel):
    """One integration point (source, object) against its SLA."""

    source: str
    object: str
    team: str | None = Field(description="Who to talk to about the source.")
    has_sla: bool = Field(description="Whether the policy declares an SLA for this point; without one, no state.")
    state: HealthState | None = Field(description="healthy, degraded, breached or no_data; null without an SLA.")
    findings: list[str] = Field(description="What is wrong, in words; empty when healthy.")
    window_s: float = Field(description="The window the figures cover, in seconds (the SLA's `window`).")
    last_sync: datetime | None = Field(description="The newest sync the source reported (heartbeat).")
    lag_s: float | None = Field(description="Seconds since that sync.")
    max_lag_s: float | None = Field(description="The SLA's `max_lag`, in seconds.")
    records: int = Field(description="Records checked in the window.")
    warned: int
    blocked: int
    block_rate: float | None = Field(description="blocked / records over the window; null without records.")
    max_block_rate: float | None = Field(description="The SLA's `max_block_rate`.")
    reasons: list[ReasonCount] = Field(description="Reasons of the window's records, most frequent first.")
    age_p50_s: float | None = Field(description="Median age of the window's records (estimated from a histogram).")
    age_p95_s: float | None = Field(description="95th percentile age of the window's records (estimated).")
    max_age_s: float | None = Field(description="The object's freshness limit (`max_age`), in seconds.")
    recovery_s: float | None = Field(description="The SLA's `recovery` objective, in seconds.")


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
                            "findings": ["sap → customer: the last sync was 47m ago; agreed 15m"],
                            "window_s": 3600.0, "last_sync": "2026-11-22T11:13:00+00:00", "lag_s": 2820.0,
                            "max_lag_s": 900.0, "records": 1200, "warned": 30, "blocked": 12, "block_rate": 0.01,
                            "max_block_rate": 0.02, "reasons": [{"code": "STALE", "records": 12}],
                            "age_p50_s": 310.0, "age_p95_s": 1700.0, "max_age_s": 3600.0, "recovery_s": 1800.0,
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
