"""`POST /v1/check`: decide a pipeline's records before inference."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import IdempotencyKey, PipelineCaller, ServiceDep
from api.idempotency import idempotent
from api.metrics import ServiceMetrics
from api.openai_errors import RUN_HEADER
from api.openapi import links, to_consumption, to_lineage, to_run
from api.problems import problem, problem_refusal, responses
from api.schemas import CheckRequest, CheckResponse
from guard import CheckResult, Guard, tally_check

router = APIRouter(prefix="/v1", tags=["check"])
#: Checks of at most this many records are decided on the event loop (about a millisecond); larger ones in a thread.
INLINE_RECORDS = 200


@router.post(
    "/check",
    response_model=CheckResponse,
    responses={
        **links(
            GetRun=to_run("/run_id"), LinkConsumption=to_consumption("/run_id"), EntityLineage=to_lineage("/records/0")
        ),
        **responses(
            400,
            401,
            403,
            409,
            413,
            415,
            422,
            503,
            types={
                400: ("not-json", "bad-request", "idempotency-key-invalid"),
                409: ("idempotency-key-in-flight",),
                413: ("too-large", "too-many-records"),
                422: ("invalid-request", "input-error", "idempotency-key-reused"),
            },
            said={409: "A request with this Idempotency-Key is still being answered: retry in a moment."},
        ),
    },
    summary="Decide which records may reach the model",
)
async def check(
    body: CheckRequest,
    *,
    request: Request,
    caller: PipelineCaller,
    service: ServiceDep,
    _idempotency_key: IdempotencyKey = None,
) -> Response:
    """Decide every record: allow, warn or block, with reasons; 200 whatever the verdict.

    A record that is not a valid envelope is decided `INVALID_RECORD`; only a request that
    cannot be checked at all (not JSON, wrong shape, too large) is refused.
    """
    guard, settings, metrics = service.guard, service.settings, service.metrics
    if len(body.records) > settings.max_records:
        return problem(
            413,
            "too-many-records",
            f"the check carries {len(body.records):,} records; this service takes at most "
            f"{settings.max_records:,} in one check: split them",
        )

    async def respond() -> Response:
        if len(body.records) <= INLINE_RECORDS:  # decided on the loop: quicker than a trip to the thread pool
            result = await guard.acheck(body.records, pipeline=body.pipeline, consumer=body.consumer)
            content = answer(guard, result, metrics)
        else:  # a long decision goes to the thread pool, so other requests keep flowing meanwhile
            content, result = await run_in_threadpool(_check, guard, body, metrics)
        return Response(content, media_type="application/json", headers={RUN_HEADER: result.run_id})

    return await idempotent(request, caller, guard.store, respond, refuse=problem_refusal)


def _check(guard: Guard, body: CheckRequest, metrics: ServiceMetrics) -> tuple[bytes, CheckResult]:
    result = guard.check(body.records, pipeline=body.pipeline, consumer=body.consumer)
    return answer(guard, result, metrics), result


def answer(guard: Guard, result: CheckResult, metrics: ServiceMetrics) -> bytes:
    """A check's answer (JSON bytes), its figures added to the metrics: the one way a check is answered."""
    metrics.observe_check(result, tally_check(result.decisions), guard.policy)
    return _dumps(result.to_dict())


def _dumps(document: dict[str, Any]) -> bytes:
    """JSON bytes; orjson for speed, the standard library for what it refuses (lone surrogates, huge ints)."""
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(document, default=repr, allow_nan=False).encode()
