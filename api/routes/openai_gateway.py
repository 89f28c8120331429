"""`POST /v1/openai/chat/completions`: an OpenAI-compatible gateway that guards the records a model is sent.

An application changes only its `base_url` (to `http://<freshguard>/v1/openai`) and its key (a pipeline
key). The records in the request (see `api.gateway`) are checked; the request is then forwarded to
`FRESHGUARD_OPENAI_UPSTREAM_URL`, with blocked records withheld, or refused (422). Every forwarded call
that carried records is linked to its run. Errors are problem+json documents that also carry OpenAI's
`error` member (`{"message", "type", "code", "param"}`, which the `openai` client reads); a 4xx says
`x-should-retry: false`, so the `openai` client does not send a refused request again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

import httpx2
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.deps import CurrentGuardDep, MetricsDep, PipelineCaller, SettingsDep
from api.gateway import (
    GatewayInputError,
    GatewayRequest,
    first_call_in_stream,
    forwarded,
    model_call,
    read_request,
    refusal,
)
from api.problem_types import HTTP_ERROR_TYPES, URN_PREFIX
from api.problems import PROBLEM_JSON, responses
from api.settings import Settings
from guard import CheckResult, Guard, GuardError, InputError, StoreError, tally_check
from guard._timestamps import utc_now
from guard.guard import MAX_NAME_LENGTH

_log = logging.getLogger("freshguard.gateway")
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
          413: "invalid_request_error", 422: "invalid_request_error"}  # fmt: skip
INTEGRATION = "gateway"
DEFAULT_PIPELINE = "openai-gateway"


def openai_error(
    status: int,
    message: str,
    *,
    code: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    problem_type: str | None = None,
) -> JSONResponse:
    """An error the `openai` client reads: OpenAI's `error` member, inside an RFC 9457 problem like every other.

    Its problem type is `problem_type`, or else the code's words (`freshguard_no_upstream`: `no-upstream`).
    A 4xx is marked `x-should-retry: false` (the same request would fail again).
    """
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    sent = dict(headers or {})
    if status < 500:
        sent["x-should-retry"] = "false"
    body = {
        "type": URN_PREFIX + (problem_type or code.removeprefix("freshguard_").replace("_", "-")),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
        "error": {"message": message, "type": kind, "code": code, "param": param},
    }
    return JSONResponse(body, status_code=status, headers=sent, media_type=PROBLEM_JSON)


class OpenAIErrorRoute(APIRoute):
    """A route whose errors, its dependencies' included (401, 403, 503), come in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except HTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
                return openai_error(
                    exc.status_code, detail, code=f"freshguard_{exc.status_code}", headers=exc.headers,
                    problem_type=HTTP_ERROR_TYPES.get(exc.status_code, "http-error"),
                )  # fmt: skip
            except InputError as exc:
                return openai_error(400, str(exc), code="freshguard_invalid_request")
            except GuardError as exc:  # the store or the guard is not there: the service's trouble, not the caller's
                code = "freshguard_store_unavailable" if isinstance(exc, StoreError) else "freshguard_unavailable"
                return openai_error(503, str(exc), code=code)

        return handler


router = APIRouter(prefix="/v1/openai", tags=["openai"], route_class=OpenAIErrorRoute)


class ChatCompletionOut(BaseModel):
    """The upstream model's answer, passed through as it came (a `text/event-stream` of chunks when streamed)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The upstream's call id; linked to the run.")
    object: str = Field(examples=["chat.completion"])
    model: str = Field(description="The model that answered; linked to the run.")
    choices: list[dict[str, Any]]


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

#: One server-sent event of a streamed answer.
_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string", "description": "A chat.completion.chunk as JSON, or [DONE]; "
                            "{\"error\": ...} when the upstream broke the stream off."}},
}  # fmt: skip

_ERRORS = """

Errors are problems (RFC 9457) that carry OpenAI's `error` member, `{"message", "type", "code", "param"}`,
which the `openai` client reads: 400 a request that is not a chat request, 401/403 a missing or non-pipeline key,
422 `freshguard_blocked` (refused under `on_block: refuse`; header `x-freshguard-run-id`), 502/504 the upstream
unreachable or late, 502 `freshguard_upstream_auth` when the upstream refuses the gateway's own key, 503 no
upstream configured. Every 4xx carries `x-should-retry: false`. A stream the upstream breaks off ends with an
SSE event `data: {"error": {...}}`. When the model answered but the call could not be linked to its run
(the lineage store is down), the answer is returned with the header `x-freshguard-link: failed`.
"""


@router.post(
    "/chat/completions",
    response_model=ChatCompletionOut,
    responses={
        200: {"content": {"text/event-stream": {"schema": _EVENT}}},  # when `stream` is true
        **responses(
            *(400, 401, 403, 413, 422, 502, 503, 504),
            said={400: "Not a chat completions request.", 422: "Refused: a record is blocked (on_block: refuse)."},
            types={
                400: ("invalid-request",),
                413: ("too-large", "too-many-records"),
                422: ("blocked",),
                502: ("upstream-unavailable", "upstream-auth"),
                503: ("no-upstream", "store-unavailable", "unavailable"),
                504: ("upstream-unavailable",),
            },
        ),
    },
    openapi_extra={"requestBody": _REQUEST_BODY},
    summary="Chat completions, with the records they carry guarded (OpenAI-compatible)",
    description=(__doc__ or "") + _ERRORS,
)
async def chat_completions(
    request: Request, caller: PipelineCaller, guard: CurrentGuardDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    """Check the records a chat request carries, then forward it upstream (withheld or refused per policy)."""
    try:
        parsed = read_request(json.loads(await request.body()))
    except (ValueError, RecursionError) as exc:
        param = exc.param if isinstance(exc, GatewayInputError) else None
        said = f"the body is not JSON ({exc}); send a chat completions request"
        message = str(exc) if isinstance(exc, GatewayInputError) else said
        return openai_error(400, message, code="freshguard_invalid_request", param=param)
    if settings.openai_upstream_url is None:
        return openai_error(
            503, "this Freshguard service has no upstream model configured; set FRESHGUARD_OPENAI_UPSTREAM_URL "
            "(e.g. https://api.openai.com/v1)", code="freshguard_no_upstream",
        )  # fmt: skip
    if len(parsed.found) > settings.max_records:
        said = f"the request carries {len(parsed.found):,} records; at most {settings.max_records:,} are checked in one"
        return openai_error(413, said, code="freshguard_too_many_records")
    result = None
    if parsed.found:
        pipeline = parsed.pipeline or request.headers.get("x-freshguard-pipeline") or _pipeline_of(caller)
        result = await run_in_threadpool(_check, guard, parsed, pipeline, metrics)
    for unreadable in parsed.withheld:
        _log.warning("gateway: %s withheld unchecked: %s", unreadable.where, unreadable.why.why)
    withholding = (result is not None and bool(result.blocked)) or bool(parsed.withheld)
    if withholding and (parsed.on_block or settings.openai_on_block) == "refuse":
        message, param = refusal(parsed, result)
        run = {"x-freshguard-run-id": result.run_id} if result is not None else {}
        return openai_error(422, message, code="freshguard_blocked", param=param, headers=run)
    body = forwarded(parsed, result)
    link = _linker(guard, result, parsed)
    if parsed.streamed:
        return await _relay_stream(settings, body, link)
    return await _relay(settings, body, link)


def _pipeline_of(caller: Caller) -> str:
    return DEFAULT_PIPELINE if caller.open else caller.name


def _check(guard: Guard, parsed: GatewayRequest, pipeline: str, metrics: Any) -> CheckResult:
    result = guard.check(parsed.envelopes, pipeline=pipeline)
    metrics.observe_check(result, tally_check(result.decisions), guard.policy)
    return result


Link = Callable[[str | None, str | None], Awaitable[bool]]
LINK_HEADER = "x-freshguard-link"


def _linker(guard: Guard, result: CheckResult | None, parsed: GatewayRequest) -> Link:
    """Link the model call to the run, best-effort: the model has answered, so a failed link loses no answer.

    Returns False when the link failed (logged, without the request's content); True otherwise.
    """

    async def link(model: str | None, call_id: str | None) -> bool:
        store = guard.store
        if result is None or store is None:
            return True
        extra = {"integration": INTEGRATION, "endpoint": "chat.completions", "stream": parsed.streamed}
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


def _upstream(settings: Settings) -> tuple[str, dict[str, str]]:
    url = f"{str(settings.openai_upstream_url).rstrip('/')}/chat/completions"
    headers = {"content-type": "application/json"}
    if settings.openai_upstream_key:
        headers["authorization"] = f"Bearer {settings.openai_upstream_key}"
    return url, headers


def redacted(url: str) -> str:
    """A URL for the log: scheme, host, port and path, without credentials, query or fragment."""
    try:
        parsed = httpx2.URL(url)
        port = f":{parsed.port}" if parsed.port else ""
        return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
    except (httpx2.InvalidURL, ValueError, TypeError):
        return "(an upstream URL that does not parse)"


def _unreachable(url: str, exc: Exception) -> JSONResponse:
    timed_out = isinstance(exc, httpx2.TimeoutException)
    what = "did not answer in time" if timed_out else "could not be reached"
    _log.error("gateway: the upstream model at %s %s (%s)", redacted(url), what, type(exc).__name__)
    return openai_error(
        504 if timed_out else 502,
        f"the upstream model {what} ({type(exc).__name__}); the request was checked but not answered, try again",
        code="freshguard_upstream_unavailable",
    )


def _upstream_refused_key(url: str, status: int) -> JSONResponse:
    """The upstream refused the gateway's own key: the operator's to fix, never the caller's auth error."""
    _log.error("gateway: the upstream model at %s refused the gateway's key (%d)", redacted(url), status)
    return openai_error(
        502,
        "the gateway's upstream key was refused; the operator must set FRESHGUARD_OPENAI_UPSTREAM_KEY "
        f"(the upstream model answered {status})",
        code="freshguard_upstream_auth",
    )


#: Upstream statuses that mean the gateway's key, not the caller's request, was refused.
_UPSTREAM_AUTH = (401, 403)


def _passed_headers(upstream: httpx2.Response) -> dict[str, str]:
    kept = ("x-request-id", "openai-processing-ms", "x-should-retry", "retry-after")
    return {name: upstream.headers[name] for name in kept if name in upstream.headers}


async def _relay(settings: Settings, body: dict[str, Any], link: Link) -> Response:
    url, headers = _upstream(settings)
    async with httpx2.AsyncClient(timeout=settings.openai_timeout_s) as client:
        try:
            upstream = await client.post(url, content=json.dumps(body).encode(), headers=headers)
        except httpx2.HTTPError as exc:
            return _unreachable(url, exc)
    if upstream.status_code in _UPSTREAM_AUTH:
        return _upstream_refused_key(url, upstream.status_code)
    passed = _passed_headers(upstream)
    if upstream.status_code == 200:
        try:
            answer = upstream.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and not await link(*model_call(answer)):
            passed[LINK_HEADER] = "failed"
    media_type = upstream.headers.get("content-type", "application/json")
    return Response(upstream.content, status_code=upstream.status_code, media_type=media_type, headers=passed)


def _stream_error(exc: Exception) -> bytes:
    """The SSE event that ends a stream the upstream broke off (the `openai` client raises it as an APIError)."""
    timed_out = isinstance(exc, httpx2.TimeoutException)
    what = "stopped answering in time" if timed_out else "broke off the stream"
    error = {
        "message": f"the upstream model {what} ({type(exc).__name__}); the answer is incomplete, try again",
        "type": "server_error",
        "code": "freshguard_upstream_unavailable",
        "param": None,
    }
    return f"data: {json.dumps({'error': error})}\n\n".encode()


async def _relay_stream(settings: Settings, body: dict[str, Any], link: Link) -> Response:
    url, headers = _upstream(settings)
    client = httpx2.AsyncClient(timeout=settings.openai_timeout_s)
    try:
        upstream = await client.send(
            client.build_request("POST", url, content=json.dumps(body).encode(),
                                 headers={**headers, "accept": "text/event-stream"}),
            stream=True,
        )  # fmt: skip
    except httpx2.HTTPError as exc:
        await client.aclose()
        return _unreachable(url, exc)
    if upstream.status_code != 200:
        try:
            content = await upstream.aread()
        except httpx2.HTTPError as exc:
            return _unreachable(url, exc)
        finally:
            await upstream.aclose()
            await client.aclose()
        if upstream.status_code in _UPSTREAM_AUTH:
            return _upstream_refused_key(url, upstream.status_code)
        return Response(content, status_code=upstream.status_code,
                        media_type=upstream.headers.get("content-type"), headers=_passed_headers(upstream))  # fmt: skip

    async def relay() -> AsyncIterator[bytes]:
        pending: bytes | None = b""  # what is read of the stream until the call id is found; None once linked
        try:
            async for piece in upstream.aiter_bytes():
                yield piece
                if pending is not None:
                    call, pending = first_call_in_stream(pending + piece)
                    if call is not None:
                        pending = None
                        await link(*call)  # best-effort: a failure is logged, the stream goes on
        except httpx2.HTTPError as exc:
            _log.error("gateway: the upstream model at %s broke off a stream (%s)", redacted(url), type(exc).__name__)
            yield _stream_error(exc)
        finally:
            await upstream.aclose()
            await client.aclose()

    return StreamingResponse(relay(), media_type=upstream.headers.get("content-type", "text/event-stream"),
                             headers=_passed_headers(upstream))  # fmt: skip
