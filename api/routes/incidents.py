"""`GET /v1/incidents`, `GET /v1/incidents/{id}`, `POST /v1/incidents/{id}/acknowledge`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, require_roles
from api.deps import ReaderCaller, StoreDep
from api.incident_schemas import IncidentDetail, IncidentList, IncidentOut
from api.keys import Role
from api.openapi import links, to_acknowledge, to_heartbeat, to_incident, to_run
from api.problems import responses
from api.schemas import Timestamp
from guard import LineageStore
from guard import impact as impacts
from guard._timestamps import utc_now
from guard.incidents import durations

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])
#: Who may acknowledge: the operators who read the dashboard (viewer keys) and admins.
OperatorCaller = Annotated[Caller, Depends(require_roles(Role.VIEWER))]
IncidentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The incident's id.")]


@router.get(
    "",
    response_model=IncidentList,
    responses={
        **links(GetIncident=to_incident("/incidents/0/id"), Acknowledge=to_acknowledge("/incidents/0/id")),
        **responses(401, 403, 422, 503),
    },
    summary="Incidents",
)
async def list_incidents(
    _caller: ReaderCaller,
    store: StoreDep,
    state: Annotated[Literal["open", "all"], Query(description="Only open incidents, or all.")] = "all",
    since: Annotated[Timestamp | None, Query(description="Open ones, and those recovered since then.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Incidents newest first, with time to detect, acknowledge and recover, and how much they touched."""
    return await run_in_threadpool(_list, store, state == "open", since, limit)


def _list(store: LineageStore, open_only: bool, since: datetime | None, limit: int) -> dict[str, Any]:
    now = utc_now()
    return {"incidents": [_out(store, row, now)[0] for row in store.incidents(open_only=open_only, since=since,
                                                                             limit=limit)]}  # fmt: skip


@router.get(
    "/{incident_id}",
    response_model=IncidentDetail,
    responses={
        **links(
            Acknowledge=to_acknowledge("/id"),
            ImpactedRun=to_run("/impact/0/run_id"),
            ReportSync=to_heartbeat("", synced_at="/detected_at"),
        ),
        **responses(401, 403, 404, 422, 503),
    },
    summary="An incident",
)
async def get_incident(_caller: ReaderCaller, store: StoreDep, incident_id: IncidentId) -> dict[str, Any]:
    """One incident with the figures at detection and every run and model call that used the point meanwhile."""
    return await run_in_threadpool(_detail, store, incident_id)


def _detail(store: LineageStore, incident_id: int) -> dict[str, Any]:
    row = store.incident(incident_id)
    if row is None:
        raise HTTPException(404, f"no incident {incident_id}; GET /v1/incidents lists them")
    out, impact = _out(store, row, utc_now())
    return {**out, "figures": row["figures"], "impact": impact}


@router.post(
    "/{incident_id}/acknowledge",
    response_model=IncidentOut,
    responses={**links(GetIncident=to_incident("/id")), **responses(401, 403, 404, 422, 503)},
    summary="Acknowledge an incident",
)
async def acknowledge(caller: OperatorCaller, store: StoreDep, incident_id: IncidentId) -> dict[str, Any]:
    """Say that someone is on it; the first acknowledgement stands (and starts nothing else)."""
    row = await run_in_threadpool(store.acknowledge_incident, incident_id, caller.name, utc_now())
    if row is None:
        raise HTTPException(404, f"no incident {incident_id}; GET /v1/incidents lists them")
    return _out(store, row, utc_now())[0]


def _out(store: LineageStore, row: dict[str, Any], now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    impact = impacts.of_incident(store, row, now)
    out = {
        **{name: row[name] for name in ("id", "source", "object", "breaches", "findings", "started_at", "detected_at",
                                         "acknowledged_at", "acknowledged_by", "recovered_at", "recovery_objective_s")},
        "open": row["recovered_at"] is None,
        **durations(row, now),
        "runs_affected": impact.checks_let_through,
        "model_calls_affected": impact.model_calls,
        "records_let_through": impact.records_let_through,
        "records_withheld": impact.records_withheld,
        "impact_summary": impact.sentence(),
    }  # fmt: skip
    runs = [{**asdict(check), "let_through": check.let_through} for check in impact.checks]
    return out, runs
