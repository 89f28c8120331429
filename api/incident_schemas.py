"""Bodies of the incident endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "source": "sap",
    "object": "customer",
    "open": True,
    "breaches": ["lag"],
    "findings": ["sap → customer: behind by 47m; agreed 15m"],
    "started_at": "2026-11-22T11:28:00+00:00",
    "detected_at": "2026-11-22T11:30:12+00:00",
    "acknowledged_at": None,
    "acknowledged_by": None,
    "recovered_at": None,
    "recovery_objective_s": 1800.0,
    "time_to_detect_s": 132.0,
    "time_to_acknowledge_s": None,
    "time_to_recover_s": None,
    "open_for_s": 1380.0,
    "past_objective": False,
    "runs_affected": 42,
    "model_calls_affected": 40,
    "records_let_through": 630,
    "records_withheld": 12,
    "impact_summary": "630 records let through to the model by 42 of 44 checks, feeding 40 model calls; 12 withheld",
}


class IncidentOut(BaseModel):
    """A breach of an integration point's SLA, from detection to recovery."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: int
    source: str
    object: str
    open: bool = Field(description="Whether the point has not recovered yet.")
    breaches: list[str] = Field(description="What was breached: lag, deadline, block_rate.")
    findings: list[str] = Field(description="The findings at detection, in words.")
    started_at: datetime = Field(description="When the breach most likely began.")
    detected_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="The API key name that acknowledged it.")
    recovered_at: datetime | None
    recovery_objective_s: float | None = Field(description="The SLA's `recovery` objective.")
    time_to_detect_s: float
    time_to_acknowledge_s: float | None
    time_to_recover_s: float | None
    open_for_s: float | None = Field(description="How long it has been open (open incidents).")
    past_objective: bool = Field(description="Recovery took, or is taking, longer than the objective.")
    runs_affected: int = Field(description="Checks that let records of the point through during the incident.")
    model_calls_affected: int = Field(description="Model calls linked to those checks.")
    records_let_through: int = Field(
        description="Records of the point those checks allowed or warned: they reached the model."
    )
    records_withheld: int = Field(description="Records of the point withheld from the model during the incident.")
    impact_summary: str = Field(description="The impact in one sentence, as the dashboard and the alerts word it.")


class ImpactedRun(BaseModel):
    """A check that decided records of the breached point during the incident."""

    run_id: str
    pipeline: str
    checked_at: datetime
    records: int
    allowed: int
    warned: int
    blocked: int
    let_through: int = Field(description="allowed + warned: records of the point that reached the model.")
    model_calls: list[dict[str, Any]]


class IncidentDetail(IncidentOut):
    """An incident, the figures at detection, and its impact: every run and model call that used the point."""

    figures: dict[str, Any] = Field(description="The point's health at detection (as GET /v1/health gives it).")
    impact: list[ImpactedRun]


class IncidentList(BaseModel):
    """Incidents, newest first."""

    incidents: list[IncidentOut]
