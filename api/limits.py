"""The request body's limits: its size (from Content-Length up front, and counted while it streams in)
and its pace (a body that stalls is answered 408 and its connection closed)."""

from __future__ import annotations

import asyncio
import time

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem


class BodyTooLarge(HTTPException):
    """The body grew past the limit while it was being read (FastAPI re-raises HTTPExceptions as they are)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over this service's limit of {limit:,} bytes; send fewer records")

    def response(self) -> JSONResponse:
        """The 413 problem to answer."""
        return problem(413, "too-large", self.detail)


#: After its grace period, a body must arrive at least this fast on average (bytes per second).
MIN_BODY_RATE = 64 * 1024


class BodyStalled(HTTPException):
    """The client stopped sending its body (or trickles it): the request is dropped."""

    def __init__(self, grace_s: float) -> None:
        super().__init__(
            408,
            f"the request body stalled: it did not arrive within {grace_s:g} s (and {MIN_BODY_RATE // 1024} KiB/s "
            "after that); send the whole body at once",
            headers={"Connection": "close"},
        )

    def response(self) -> JSONResponse:
        """The 408 problem to answer."""
        answer = problem(408, "request-timeout", self.detail)
        answer.headers["Connection"] = "close"
        return answer


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` answers 413 before it is read whole; one that stalls, 408.

    A body has `grace_s` seconds, and one more second for every `MIN_BODY_RATE` bytes it has
    delivered; a client that trickles it slower holds no worker for longer than that.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, grace_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.grace_s = grace_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await BodyTooLarge(self.max_bytes).response()(scope, receive, send)
            return
        received = 0
        started = False
        begun = time.monotonic()
        complete = scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and declared in (None, 0)

        async def counted() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: what comes now is the disconnect, whenever it comes
                return await receive()
            allowed = begun + self.grace_s + received / MIN_BODY_RATE - time.monotonic()
            try:
                async with asyncio.timeout(max(allowed, 0.001)):
                    message = await receive()
            except TimeoutError:
                raise BodyStalled(self.grace_s) from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except (BodyTooLarge, BodyStalled) as exc:
            # Reached only when no exception handler answered it (an endpoint that reads the stream itself).
            if started:
                raise
            await exc.response()(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
