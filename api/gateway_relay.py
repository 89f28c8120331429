"""The gateway's side of the upstream model: requests forwarded, answers and streams relayed back.

An answer is passed through as the upstream gave it (status, body, `x-request-id`, `retry-after`, ...)
with the gateway's own headers added (`x-freshguard-run-id` when a check ran). The upstream's trouble
is worded by Freshguard: unreachable or late is a 502/504 the client may retry; an upstream that refuses
the gateway's own key is a 502 `freshguard_upstream_auth` it may not (the operator must fix the key);
a stream the upstream breaks off ends with an SSE `error` event. URLs are logged without credentials.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
from fastapi import Response
from fastapi.responses import JSONResponse, StreamingResponse

from api.gateway import first_call_in_stream, model_call
from api.openai_errors import RUN_HEADER, openai_error
from api.settings import Settings

_log = logging.getLogger("freshguard.gateway")
#: Links the model call (model, call id) to the run; False when the link failed (the answer still goes back).
Link = Callable[[str | None, str | None], Awaitable[bool]]
LINK_HEADER = "x-freshguard-link"
#: Upstream statuses that mean the gateway's key, not the caller's request, was refused.
_UPSTREAM_AUTH = (401, 403)
_PASSED = ("x-request-id", "openai-processing-ms", "x-should-retry", "retry-after")


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the gateway forwards model calls, with which key, and how long it waits."""

    base_url: str
    key: str | None
    timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> Upstream | None:
        """The upstream the settings name, or None when there is none."""
        if settings.openai_upstream_url is None:
            return None
        return cls(str(settings.openai_upstream_url).rstrip("/"), settings.openai_upstream_key,
                   settings.openai_timeout_s)  # fmt: skip

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def headers(self, *, streamed: bool = False) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.key:
            headers["authorization"] = f"Bearer {self.key}"
        if streamed:
            headers["accept"] = "text/event-stream"
        return headers


def redacted(url: str) -> str:
    """A URL for the log: scheme, host, port and path, without credentials, query or fragment."""
    try:
        parsed = httpx2.URL(url)
        port = f":{parsed.port}" if parsed.port else ""
        return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
    except (httpx2.InvalidURL, ValueError, TypeError):
        return "(an upstream URL that does not parse)"


def _unreachable(url: str, exc: Exception, added: Mapping[str, str]) -> JSONResponse:
    timed_out = isinstance(exc, httpx2.TimeoutException)
    what = "did not answer in time" if timed_out else "could not be reached"
    _log.error("gateway: the upstream model at %s %s (%s)", redacted(url), what, type(exc).__name__)
    checked = "; the request was checked but not answered" if RUN_HEADER in added else ""
    return openai_error(
        504 if timed_out else 502,
        f"the upstream model {what} ({type(exc).__name__}){checked}, try again",
        code="freshguard_upstream_unavailable",
        headers=added,
    )


def _refused_key(url: str, status: int, added: Mapping[str, str]) -> JSONResponse:
    """The upstream refused the gateway's own key: the operator's to fix, never the caller's auth error."""
    _log.error("gateway: the upstream model at %s refused the gateway's key (%d)", redacted(url), status)
    return openai_error(
        502,
        "the gateway's upstream key was refused; the operator must set FRESHGUARD_OPENAI_UPSTREAM_KEY "
        f"(the upstream model answered {status})",
        code="freshguard_upstream_auth",
        headers=added,
    )


def _passed_headers(upstream: httpx2.Response, added: Mapping[str, str]) -> dict[str, str]:
    return {**{name: upstream.headers[name] for name in _PASSED if name in upstream.headers}, **added}


def _answer(upstream: httpx2.Response, content: bytes, url: str, added: dict[str, str]) -> Response:
    if upstream.status_code in _UPSTREAM_AUTH:
        return _refused_key(url, upstream.status_code, added)
    media_type = upstream.headers.get("content-type", "application/json")
    return Response(content, status_code=upstream.status_code, media_type=media_type,
                    headers=_passed_headers(upstream, added))  # fmt: skip


async def relay(upstream: Upstream, path: str, body: dict[str, Any], link: Link, added: dict[str, str]) -> Response:
    """POST `body` to the upstream's `path` and pass its answer back; a 200 is linked to the run."""
    url = upstream.url(path)
    async with httpx2.AsyncClient(timeout=upstream.timeout_s) as client:
        try:
            answered = await client.post(url, content=json.dumps(body).encode(), headers=upstream.headers())
        except httpx2.HTTPError as exc:
            return _unreachable(url, exc, added)
    if answered.status_code == 200:
        try:
            document = answered.json()
        except ValueError:
            document = None
        if isinstance(document, dict) and not await link(*model_call(document)):
            added = {**added, LINK_HEADER: "failed"}
    return _answer(answered, answered.content, url, added)


async def relay_get(upstream: Upstream, path: str) -> Response:
    """GET the upstream's `path` (the model list) and pass its answer back."""
    url = upstream.url(path)
    async with httpx2.AsyncClient(timeout=upstream.timeout_s) as client:
        try:
            answered = await client.get(url, headers=upstream.headers())
        except httpx2.HTTPError as exc:
            return _unreachable(url, exc, {})
    return _answer(answered, answered.content, url, {})


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
    return f"data: {json.dumps({'type': 'error', 'error': error})}\n\n".encode()


async def relay_stream(
    upstream: Upstream, path: str, body: dict[str, Any], link: Link, added: dict[str, str]
) -> Response:
    """POST a streamed request and relay the SSE stream as it comes; linked on the first event naming the call."""
    url = upstream.url(path)
    client = httpx2.AsyncClient(timeout=upstream.timeout_s)
    sent = json.dumps(body).encode()
    request = client.build_request("POST", url, content=sent, headers=upstream.headers(streamed=True))
    try:
        answered = await client.send(request, stream=True)
    except httpx2.HTTPError as exc:
        await client.aclose()
        return _unreachable(url, exc, added)
    if answered.status_code != 200:
        try:
            content = await answered.aread()
        except httpx2.HTTPError as exc:
            return _unreachable(url, exc, added)
        finally:
            await answered.aclose()
            await client.aclose()
        return _answer(answered, content, url, added)

    async def relayed() -> AsyncIterator[bytes]:
        pending: bytes | None = b""  # what is read of the stream until the call id is found; None once linked
        try:
            async for piece in answered.aiter_bytes():
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
            await answered.aclose()
            await client.aclose()

    return StreamingResponse(relayed(), media_type=answered.headers.get("content-type", "text/event-stream"),
                             headers=_passed_headers(answered, added))  # fmt: skip
