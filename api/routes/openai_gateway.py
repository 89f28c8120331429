"""`/v1/openai`: an OpenAI-compatible gateway that guards the records a model is sent.

An application changes only its `base_url` (to `http://<freshguard>/v1/openai`) and its key (a pipeline
key). `POST chat/completions` and `POST responses` (the Responses API) check the records the request
carries (in tool results, and in the `freshguard` extension member), then forward it to
`FRESHGUARD_OPENAI_UPSTREAM_URL` with blocked records withheld, or refuse it (422); `GET models` is
passed through. Every forwarded call that carried records
is linked to its run, and every answer to a request that ran a check names the run in the header
`x-freshguard-run-id`. Errors are problem+json documents that also carry OpenAI's `error` member
(`{"message", "type", "code", "param"}`, which the `openai` client reads), on every path under
`/v1/openai`, including paths the gateway does not serve; an error a retry cannot fix says
`x-should-retry: false`, so the `openai` client does not send it again. The reference is
docs/http-api.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.deps import IdempotencyKey, PipelineCaller, Service, ServiceDep, SettingsDep
from api.gateway import GatewayInputError, GatewayRequest, forwarded, read_request, refusal
from api.gateway_relay import Link, Upstream, relay, relay_get, relay_stream
from api.idempotency import idempotent
from api.metrics import ServiceMetrics
from api.openai_errors import RUN_HEADER, OpenAIErrorRoute, openai_error
from api.problems import responses
from api.settings import Settings
from guard import CheckResult, Guard, GuardError, tally_check
from guard._timestamps import utc_now
from guard.integrations.tool_results import CHAT, RESPONSES, RequestShape
from guard.limits import MAX_NAME_LENGTH

_log = logging.getLogger("freshguard.gateway")
INTEGRATION = "gateway"
DEFAULT_PIPELINE = "openai-gateway"

router = APIRouter(prefix="/v1/openai", tags=["openai"], route_class=OpenAIErrorRoute)


class ChatCompletionOut(BaseModel):
    """The upstream model's answer, passed through as it came (a `text/event-stream` of chunks when streamed)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The upstream's call id; linked to the run.")
    object: str = Field(examples=["chat.completion"])
    model: str = Field(description="The model that answered; linked to the run.")
    choices: list[dict[str, Any]]


class ResponseOut(BaseModel):
    """The upstream model's Responses API answer, passed through (a `text/event-stream` of events when streamed)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The upstream's response id; linked to the run.")
    object: str = Field(examples=["response"])
    model: str = Field(description="The model that answered; linked to the run.")
    output: list[dict[str, Any]]


class ModelsOut(BaseModel):
    """The upstream's model list, passed through."""

    model_config = ConfigDict(extra="allow")

    object: str = Field(examples=["list"])
    data: list[dict[str, Any]]


#: The chat completions request, as far as the gateway reads it (the rest goes upstream as it came).
_REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string", "description": "The model to call, as the upstream names it."},
            "messages": {"type": "array", "description": "The chat messages, as the upstream takes them; tool "
                         "results that carry records are checked."},
            "stream": {"description": "true: the answer is a text/event-stream of chunks, as the upstream sends it."},
            "freshguard": {"type": "object", "description": "Records to check besides the tool results, and how.",
                           "properties": {
                "records": {"type": "array", "items": {"type": "object"}},
                "pipeline": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                "on_block": {"enum": ["withhold", "refuse", None]},
            }},
        },
        "additionalProperties": True,
    }, "example": {
        "model": "gpt-4o", "messages": [{"role": "user", "content": "What is C-1042's credit limit?"}],
        "freshguard": {"pipeline": "support-bot", "records": [{"id": "doc-17", "object": "customer", "key": "C-1042",
                       "source": "salesforce", "observed_at": "2026-11-22T10:00:00Z", "content": "Customer C-1042"}]},
    }}},
}  # fmt: skip

#: The Responses API request, as far as the gateway reads it (the rest goes upstream as it came).
_RESPONSES_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string", "description": "The model to call, as the upstream names it."},
            "input": {"type": ["string", "array", "null"], "description": "Text, or input items as the upstream "
                      "takes them; `function_call_output` items that carry records are checked."},
            "stream": {"description": "true: the answer is a text/event-stream of events, as the upstream sends it."},
            "freshguard": {"type": "object", "description": "Records to check besides the tool outputs, and how.",
                           "properties": {
                "records": {"type": "array", "items": {"type": "object"}},
                "pipeline": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                "on_block": {"enum": ["withhold", "refuse", None]},
            }},
        },
        "additionalProperties": True,
    }, "example": {
        "model": "gpt-4o", "input": "What is C-1042's credit limit?",
        "freshguard": {"pipeline": "support-bot", "records": [{"id": "doc-17", "object": "customer", "key": "C-1042",
                       "source": "salesforce", "observed_at": "2026-11-22T10:00:00Z", "content": "Customer C-1042"}]},
    }}},
}  # fmt: skip

#: One server-sent event of a streamed answer.
_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string", "description": "A chunk or event as JSON, or [DONE]; "
                            "{\"error\": ...} when the upstream broke the stream off."}},
}  # fmt: skip

#: The problem types of a guarded model call, by status.
_IN_FLIGHT = "A request with this Idempotency-Key is still being answered: retry in a moment."
_CALL_TYPES = {
    400: ("invalid-request", "idempotency-key-invalid"),
    409: ("idempotency-key-in-flight",),
    413: ("too-large", "too-many-records"),
    422: ("blocked", "idempotency-key-reused"),
    502: ("upstream-unavailable", "upstream-auth"),
    503: ("no-upstream", "store-unavailable", "unavailable"),
    504: ("upstream-unavailable",),
}

_ERRORS = """

Errors are problems (RFC 9457) that carry OpenAI's `error` member, `{"message", "type", "code", "param"}`,
which the `openai` client reads: 400 a request that is not one this route takes, 401/403 a missing or
non-pipeline key, 413 too many records, 422 `freshguard_blocked` (refused under `on_block: refuse`), 502/504
the upstream unreachable or late, 502 `freshguard_upstream_auth` when the upstream refuses the gateway's own
key, 503 no upstream configured. Every error a retry cannot fix (each 4xx, `freshguard_upstream_auth`,
`freshguard_no_upstream`) carries `x-should-retry: false`. A stream the upstream breaks off ends with an SSE
event `data: {"error": {...}}`. When the model answered but the call could not be linked to its run (the
lineage store is down), the answer is returned with the header `x-freshguard-link: failed`.
"""


@router.post(
    "/chat/completions",
    response_model=ChatCompletionOut,
    responses={
        200: {"content": {"text/event-stream": {"schema": _EVENT}}},  # when `stream` is true
        **responses(
            *(400, 401, 403, 409, 413, 422, 502, 503, 504),
            said={
                400: "Not a chat completions request.",
                422: "Refused: a record is blocked (on_block: refuse).",
                409: _IN_FLIGHT,
            },
            types=_CALL_TYPES,
        ),
    },
    openapi_extra={"requestBody": _REQUEST_BODY},
    summary="Chat completions, with the records they carry guarded (OpenAI-compatible)",
    description=(__doc__ or "") + _ERRORS,
)
async def chat_completions(
    request: Request,
    caller: PipelineCaller,
    service: ServiceDep,
    _idempotency_key: IdempotencyKey = None,
) -> Response:
    """Check the records a chat request carries, then forward it upstream (withheld or refused per policy)."""
    return await _once(request, CHAT, caller, service)


@router.post(
    "/responses",
    response_model=ResponseOut,
    responses={
        200: {"content": {"text/event-stream": {"schema": _EVENT}}},  # when `stream` is true
        **responses(
            *(400, 401, 403, 409, 413, 422, 502, 503, 504),
            said={
                400: "Not a Responses API request.",
                422: "Refused: a record is blocked (on_block: refuse).",
                409: _IN_FLIGHT,
            },
            types=_CALL_TYPES,
        ),
    },
    openapi_extra={"requestBody": _RESPONSES_BODY},
    summary="Responses API, with the records its tool outputs carry guarded (OpenAI-compatible)",
    description=(__doc__ or "") + _ERRORS,
)
async def create_response(
    request: Request,
    caller: PipelineCaller,
    service: ServiceDep,
    _idempotency_key: IdempotencyKey = None,
) -> Response:
    """Check the records in a Responses request's `function_call_output` items, then forward it upstream."""
    return await _once(request, RESPONSES, caller, service)


async def _once(request: Request, shape: RequestShape, caller: Caller, service: Service) -> Response:
    """`_guarded`, answered once per Idempotency-Key (a retry with the key gets the first answer)."""
    guard = service.guard

    async def answer() -> Response:
        return await _guarded(request, shape, caller, guard, settings=service.settings, metrics=service.metrics)

    return await idempotent(request, caller, guard.store, answer, refuse=_refusal)


def _refusal(status: int, kind: str, detail: str, headers: Mapping[str, str]) -> Response:
    """An Idempotency-Key refusal in OpenAI's shape (a 409 is worth a retry; the others are not)."""
    return openai_error(status, detail, code="freshguard_" + kind.replace("-", "_"), problem_type=kind, headers=headers)


@router.get(
    "/models",
    response_model=ModelsOut,
    responses=responses(
        401,
        403,
        502,
        503,
        504,
        types={502: ("upstream-unavailable", "upstream-auth"), 503: ("no-upstream",), 504: ("upstream-unavailable",)},
    ),
    summary="The upstream's models, passed through (OpenAI-compatible)",
)
async def list_models(caller: PipelineCaller, settings: SettingsDep) -> Response:
    """The upstream's model list, as it gave it (nothing to check)."""
    upstream = Upstream.of(settings)
    if upstream is None:
        return _no_upstream()
    return await relay_get(upstream, "models")


_SERVED = {"chat/completions": "POST", "responses": "POST", "models": "GET"}


@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], include_in_schema=False
)
async def not_served(path: str, request: Request) -> Response:
    """Any other path under /v1/openai: a 404 (405 for a served path with another method) in OpenAI's shape."""
    served = ", ".join(f"{method} /v1/openai/{name}" for name, method in _SERVED.items())
    method = _SERVED.get(path.strip("/"))
    if method is not None:
        return openai_error(405, f"/v1/openai/{path} takes {method}, not {request.method}",
                            code="freshguard_method_not_allowed", headers={"allow": method})  # fmt: skip
    return openai_error(
        404, f"the Freshguard gateway does not serve /v1/openai/{path:.200}; it serves {served}",
        code="freshguard_not_found",
    )  # fmt: skip


def _no_upstream() -> Response:
    return openai_error(
        503, "this Freshguard service has no upstream model configured; set FRESHGUARD_OPENAI_UPSTREAM_URL "
        "(e.g. https://api.openai.com/v1)", code="freshguard_no_upstream",
    )  # fmt: skip


async def _guarded(
    request: Request, shape: RequestShape, caller: Caller, guard: Guard, *, settings: Settings, metrics: ServiceMetrics
) -> Response:
    """Read, check and forward one model request of `shape` (chat completions or the Responses API)."""
    try:
        parsed = read_request(json.loads(await request.body()), shape)
    except (ValueError, RecursionError) as exc:
        param = exc.param if isinstance(exc, GatewayInputError) else None
        said = f"the body is not JSON ({exc}); send {'a chat completions' if shape is CHAT else 'a Responses'} request"
        message = str(exc) if isinstance(exc, GatewayInputError) else said
        return openai_error(400, message, code="freshguard_invalid_request", param=param)
    upstream = Upstream.of(settings)
    if upstream is None:
        return _no_upstream()
    if len(parsed.found) > settings.max_records:
        said = f"the request carries {len(parsed.found):,} records; at most {settings.max_records:,} are checked in one"
        return openai_error(413, said, code="freshguard_too_many_records")
    result = None
    if parsed.found:
        pipeline = parsed.pipeline or request.headers.get("x-freshguard-pipeline") or _pipeline_of(caller)
        result = await run_in_threadpool(_check, guard, parsed, pipeline, metrics)
    for unreadable in parsed.withheld:
        _log.warning("gateway: %s withheld unchecked: %s", unreadable.where, unreadable.why.why)
    run = {RUN_HEADER: result.run_id} if result is not None else {}
    withholding = (result is not None and bool(result.blocked)) or bool(parsed.withheld)
    if withholding and (parsed.on_block or settings.openai_on_block) == "refuse":
        message, param = refusal(parsed, result)
        return openai_error(422, message, code="freshguard_blocked", param=param, headers=run)
    body = forwarded(parsed, result)
    link = _linker(guard, result, parsed)
    path = "chat/completions" if shape is CHAT else "responses"
    if parsed.streamed:
        return await relay_stream(upstream, path, body, link, run)
    return await relay(upstream, path, body, link, run)


def _pipeline_of(caller: Caller) -> str:
    return DEFAULT_PIPELINE if caller.open else caller.name


def _check(guard: Guard, parsed: GatewayRequest, pipeline: str, metrics: ServiceMetrics) -> CheckResult:
    result = guard.check(parsed.envelopes, pipeline=pipeline)
    metrics.observe_check(result, tally_check(result.decisions), guard.policy)
    return result


def _linker(guard: Guard, result: CheckResult | None, parsed: GatewayRequest) -> Link:
    """Link the model call to the run, best-effort: the model has answered, so a failed link loses no answer.

    Returns False when the link failed (logged, without the request's content); True otherwise.
    """

    async def link(model: str | None, call_id: str | None) -> bool:
        store = guard.store
        if result is None or store is None:
            return True
        extra = {"integration": INTEGRATION, "endpoint": parsed.shape.endpoint, "stream": parsed.streamed}
        requested = parsed.body.get("model")
        try:
            await run_in_threadpool(
                store.link_consumption, result.run_id, model or str(requested), call_id, extra, linked_at=utc_now()
            )
        except GuardError as exc:
            _log.error(
                "gateway: run %s could not be linked to model call %s (%s); the answer was returned: %s",
                result.run_id, call_id, type(exc).__name__, exc,
            )  # fmt: skip
            return False
        return True

    return link
