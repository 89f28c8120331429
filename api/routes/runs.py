"""`GET /v1/runs`, `GET /v1/runs/{run_id}` and `POST /v1/runs/{run_id}/consumption`: the check history."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import PipelineCaller, ReaderCaller, StoreDep
from api.openapi import Link, body, links, to_consumption, to_lineage, to_policy_version, to_run
from api.problems import ProblemLocation, problem, responses
from api.schemas import Consumption, ConsumptionLinked, RunDetail, RunList, Timestamp
from guard._timestamps import utc_now
from guard.decisions import Verdict
from guard.limits import MAX_NAME_LENGTH

router = APIRouter(prefix="/v1/runs", tags=["runs"])


#: The next page of GET /v1/runs.
_NEXT_PAGE = Link(
    "GET /v1/runs",
    "The next page (while `next_cursor` is not null); send the same filters with it.",
    {"cursor": body("/next_cursor")},
)


@router.get(
    "",
    response_model=RunList,
    responses={
        **links(GetRun=to_run("/runs/0/run_id"), NextPage=_NEXT_PAGE),
        **responses(401, 403, 422, 503, types={422: ("invalid-request", "invalid-cursor")}),
    },
    summary="Check history",
)
def list_runs(
    *,
    _caller: ReaderCaller,
    store: StoreDep,
    pipeline: Annotated[
        str | None, Query(min_length=1, max_length=MAX_NAME_LENGTH, description="Only this pipeline's checks.")
    ] = None,
    verdict: Annotated[Verdict | None, Query(description="Only checks with this verdict.")] = None,
    since: Annotated[
        Timestamp | None, Query(description="Only checks made at or after this time (ISO 8601 with offset).")
    ] = None,
    until: Annotated[Timestamp | None, Query(description="Only checks made before this time.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many runs in this page, newest first.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page, for the next one.")
    ] = None,
) -> Response | dict[str, Any]:
    """Checks newest first, filtered by pipeline, verdict and time; `next_cursor` pages through the rest."""
    after = None
    if cursor is not None:
        after = _read_cursor(cursor)
        if after is None:
            said = "not a cursor this service gave; pass next_cursor as it came (or none, for the first page)"
            where = ProblemLocation(loc=["query", "cursor"], message=said, type="cursor_invalid")
            return problem(422, "invalid-cursor", f"query.cursor: {said}", [where])
    found = store.list_runs(
        pipeline=pipeline,
        verdict=None if verdict is None else verdict.value,
        since=since,
        until=until,
        after=after,
        limit=limit + 1,
    )
    page, more = found[:limit], len(found) > limit
    return {"runs": page, "next_cursor": _cursor_of(page[-1]) if more else None}


def _cursor_of(run: dict[str, Any]) -> str:
    position = json.dumps([run["checked_at"].isoformat(), run["run_id"]])
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str] | None:
    """The position a cursor of ours names; None for any other text."""
    try:
        checked_at, run_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(checked_at)
    except (ValueError, TypeError, binascii.Error):
        return None
    if moment.tzinfo is None or not isinstance(run_id, str):
        return None
    return moment, run_id


@router.get(
    "/{run_id}",
    response_model=RunDetail,
    responses={
        **links(
            LinkConsumption=to_consumption("/run_id"),
            EntityLineage=to_lineage("/decisions/0"),
            PolicyVersion=to_policy_version("/policy_version"),
        ),
        **responses(401, 403, 404, 422, 503),
    },
    summary="One check",
)
def get_run(_caller: ReaderCaller, store: StoreDep, run_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    """One check with every decision it made."""
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r} in the lineage store; GET /v1/runs lists the recent ones")
    return run


@router.post(
    "/{run_id}/consumption",
    response_model=ConsumptionLinked,
    responses={**links(GetRun=to_run("/run_id")), **responses(400, 401, 403, 404, 415, 422, 503)},
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
