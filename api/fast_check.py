"""`POST /v1/check` on its everyday path in plain ASGI, ahead of FastAPI's routing, dependencies and validation.

Every model call waits on this route, and FastAPI's machinery (routing, solving the route's
dependencies, validating the body through a Python object) cost about a quarter of a millisecond a
check, as much as deciding 20 records. `FastCheck` answers a check itself when nothing about it is
unusual: a JSON body (`content-type: application/json`) that validates as a `CheckRequest` straight
from its bytes, a key of the right role (or open mode), no `Idempotency-Key`, at most
`INLINE_RECORDS` records. Everything else goes to the FastAPI route, which answers it as it always
has (its refusals, the idempotency receipts, large checks on the thread pool), with the body
replayed when it was read. Both paths answer a check the same way: the same guard, the same policy
sync, metrics and answer (`api.routes.check.answer`), the same error problems.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import allow_roles, caller_of
from api.deps import synced_guard
from api.keys import Role
from api.openai_errors import RUN_HEADER
from api.problems import guard_error_response
from api.routes.check import INLINE_RECORDS, answer
from api.schemas import CheckRequest
from guard.errors import GuardError

_PATH = "/v1/check"
_ALLOWED = (Role.PIPELINE, Role.ADMIN)


class FastCheck:
    """ASGI middleware: answers the everyday `POST /v1/check` itself, hands every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != _PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        guard = getattr(state, "guard", None)
        if guard is None or not _plain(scope, state):
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        settings = state.settings
        try:
            check = CheckRequest.model_validate_json(body)
        except ValidationError:  # the route words every location of what is wrong
            check = None
        if check is None or len(check.records) > min(settings.max_records, INLINE_RECORDS):
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            guard = await synced_guard(state, guard, settings)
            result = await guard.acheck(check.records, pipeline=check.pipeline, consumer=check.consumer)
        except GuardError as exc:
            await guard_error_response(scope["method"], _PATH, exc)(scope, receive, send)
            return
        content = answer(guard, result, state.metrics)
        headers = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            (RUN_HEADER.encode(), result.run_id.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _plain(scope: Scope, state: Any) -> bool:
    """Whether the request's head is an everyday check's: JSON, no Idempotency-Key, a key that may check."""
    content_type = authorization = api_key = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"idempotency-key":
            return False
        elif name == b"authorization":
            authorization = value
        elif name == b"x-api-key":
            api_key = value
    if content_type != b"application/json":
        return False
    presented = None
    if authorization is not None:
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            return False
        presented = credentials
    elif api_key is not None:
        presented = api_key.decode("latin-1")
    try:
        allow_roles(caller_of(state, presented), _ALLOWED)
    except (HTTPException, GuardError):  # the route answers 401, 403 or 503 with its words
        return False
    return True


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: nothing to answer
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then whatever the connection says next."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
