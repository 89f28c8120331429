"""`POST /v1/sources/{source}/heartbeats`: an integration reports a completed sync."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, source_in_path
from api.deps import CurrentGuardDep, MetricsDep
from api.problems import responses
from api.schemas import Heartbeat, HeartbeatStored

router = APIRouter(prefix="/v1/sources", tags=["sources"])


@router.post(
    "/{source}/heartbeats",
    response_model=HeartbeatStored,
    responses=responses(
        *(400, 401, 403, 404, 415, 422, 503),
        types={422: ("invalid-request", "input-error")},
        said={
            404: "The source is not one of the policy's.",
            422: "The heartbeat is not of the shape this endpoint takes, or is refused for what it says: an object "
            "the source neither owns nor copies, a sync time in the future.",
        },
    ),
    summary="Report a completed sync",
)
async def post_heartbeat(
    source: str,
    body: Heartbeat,
    _caller: Annotated[Caller, Depends(source_in_path)],
    guard: CurrentGuardDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Keep the heartbeat of `source` for an object it owns or serves copies of; every heartbeat is kept."""
    policy = guard.policy
    if source not in policy.sources:
        raise HTTPException(
            404,
            f"{source!r:.80} is not a source of policy {policy.name} (it has: {', '.join(sorted(policy.sources))})",
        )
    stored = await run_in_threadpool(guard.note_heartbeat, source, body.object, body.synced_at, body.writer)
    metrics.observe_heartbeat(source, body.object, policy)
    return stored
