"""`GET /metrics`: Prometheus metrics (text exposition format)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from starlette.concurrency import run_in_threadpool

from api.deps import MetricsDep, ReaderCaller
from api.problems import responses

router = APIRouter(tags=["metrics"])
_EXAMPLE = (
    "# HELP freshguard_checks_total Checks run, by pipeline and verdict.\n"
    "# TYPE freshguard_checks_total counter\n"
    'freshguard_checks_total{pipeline="support-bot",verdict="partial"} 12.0\n'
)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format (OpenMetrics when the Accept header asks for it).",
            "content": {
                CONTENT_TYPE_PLAIN_0_0_4: {"schema": {"type": "string"}, "example": _EXAMPLE},
                OPENMETRICS: {"schema": {"type": "string"}, "example": f"{_EXAMPLE}# EOF\n"},
            },
        },
        **responses(401, 403, 503),
    },
    summary="Prometheus metrics",
)  # fmt: skip
async def metrics(request: Request, _caller: ReaderCaller, service_metrics: MetricsDep) -> Response:
    """Checks, records by action and reason, latencies and ages; SLA gauges per integration point.

    Needs a viewer (or pipeline, admin) key when keys are configured: point Prometheus'
    `authorization: {credentials_file: ...}` at one.
    """
    body, media_type = await run_in_threadpool(service_metrics.render, request.headers.get("accept"))
    return Response(body, media_type=media_type)
