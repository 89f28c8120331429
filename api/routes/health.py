"""`GET /v1/health`: SLA state per integration point, with the figures behind it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentGuardDep, ReaderCaller
from api.health_schemas import HealthReport
from api.openapi import links, to_heartbeat
from api.problems import responses
from guard import Guard
from guard._timestamps import utc_now
from guard.health import DEFINITION

router = APIRouter(prefix="/v1", tags=["health"])


@router.get(
    "/health",
    response_model=HealthReport,
    responses={**links(ReportSync=to_heartbeat("/points/0", synced_at="/checked_at")), **responses(401, 403, 503)},
    summary="SLA health",
)
async def health(_caller: ReaderCaller, guard: CurrentGuardDep) -> dict[str, Any]:
    """Every SLA of the policy with its state and findings, then the other integration points' figures."""
    return await run_in_threadpool(_report, guard)


def _report(guard: Guard) -> dict[str, Any]:
    now = utc_now()
    points = guard.health(now)
    policy = guard.policy
    return {
        "checked_at": now,
        "policy": {"name": policy.name, "version": policy.version},
        "definition": DEFINITION,
        "points": [point.to_dict() for point in points],
    }
