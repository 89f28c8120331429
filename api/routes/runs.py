"""`GET /v1/runs`, `GET /v1/runs/{run_id}` and `POST /v1/runs/{run_id}/consumption`: the check history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import PipelineCaller, ReaderCaller, StoreDep
from api.problems import responses
from api.schemas import Consumption, ConsumptionLinked, RunDetail, RunList
from guard._timestamps import utc_now
from guard.guard import MAX_NAME_LENGTH

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.get("", response_model=RunList, responses=responses(401, 403, 422, 503), summary="Recent checks")
def list_runs(
    _caller: ReaderCaller,
    store: StoreDep,
    pipeline: Annotated[
        str | None, Query(min_length=1, max_length=MAX_NAME_LENGTH, description="Only this pipeline's checks.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many runs, newest first.")] = 50,
) -> dict[str, Any]:
    """The most recent checks, newest first."""
    return {"runs": store.list_runs(pipeline=pipeline, limit=limit)}


@router.get("/{run_id}", response_model=RunDetail, responses=responses(401, 403, 404, 422, 503), summary="One check")
def get_run(_caller: ReaderCaller, store: StoreDep, run_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    """One check with every decision it made."""
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r} in the lineage store; GET /v1/runs lists the recent ones")
    return run


@router.post(
    "/{run_id}/consumption",
    response_model=ConsumptionLinked,
    responses=responses(400, 401, 403, 404, 415, 422, 503),
    summary="Link a run to the model call that consumed it",
)
async def link_consumption(
    body: Consumption, _caller: PipelineCaller, store: StoreDep, run_id: Annotated[str, Path(max_length=64)]
) -> dict[str, Any]:
    """Record, after the check, which model call consumed the run's allowed records (shown in lineage)."""
    extra = dict(body.model_extra or {})
    linked = await run_in_threadpool(
        lambda: store.link_consumption(run_id, body.model, body.call_id, extra, linked_at=utc_now())
    )
    if linked is None:
        raise HTTPException(404, f"no run {run_id!r} in the lineage store; link a run_id that POST /v1/check returned")
    return {"run_id": run_id, **linked}
