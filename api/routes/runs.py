"""`GET /v1/runs` and `GET /v1/runs/{run_id}`: the check history in the lineage store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import ReaderCaller, StoreDep
from api.problems import responses
from api.schemas import RunDetail, RunList
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
