"""`Idempotency-Key`: a caller's retry of a request gets the first answer, not a second run.

The first request with a key claims it in the lineage store (scoped to the caller's API key);
its answer is kept against the key for 24 hours. A repeat with the same key and the same body
gets that answer again (`Idempotent-Replayed: true`, the same `x-freshguard-run-id`); with another
body, 422; while the first is still being answered, 409 with `Retry-After`. An answer that is a
5xx or a stream is not kept: the key is let go, and a retry runs again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.openai_errors import RUN_HEADER
from guard import LineageStore
from guard._timestamps import utc_now
from guard.errors import StoreError

_log = logging.getLogger("freshguard.api")

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
_MAX_KEY = 255

#: Makes the refusal a route answers with: (status, problem type, detail, headers) -> response.
Refusal = Callable[[int, str, str, Mapping[str, str]], Response]


@dataclass(frozen=True, slots=True)
class _Claim:
    store: LineageStore
    scope: str
    key: str


async def idempotent(
    request: Request,
    caller: Caller,
    store: LineageStore | None,
    answer: Callable[[], Awaitable[Response]],
    *,
    refuse: Refusal,
) -> Response:
    """`answer()`, unless the request's Idempotency-Key says it was answered (or is being answered) already."""
    key = request.headers.get(HEADER)
    if key is None or store is None:
        return await answer()
    if not 0 < len(key) <= _MAX_KEY or not key.isascii() or not key.isprintable():
        return refuse(
            400, "idempotency-key-invalid",
            f"Idempotency-Key must be 1 to {_MAX_KEY} printable ASCII characters (a UUID does well), "
            f"got {key[:40]!r}", {},
        )  # fmt: skip
    digest = request_digest(request.method, request.url.path, await request.body())
    held = await run_in_threadpool(store.claim_receipt, caller.name, key, digest, now=utc_now())
    if held is not None:
        if held.request_hash != digest:
            return refuse(
                422, "idempotency-key-reused",
                f"Idempotency-Key {key[:80]!r} was used at {held.claimed_at.isoformat()} for another request "
                "(another body or path); use a new key for a new request", {},
            )  # fmt: skip
        if not held.answered or held.status is None or held.body is None:
            return refuse(
                409, "idempotency-key-in-flight",
                f"a request with Idempotency-Key {key[:80]!r} is still being answered; retry in a moment to "
                "get its answer", {"Retry-After": "1"},
            )  # fmt: skip
        headers = {REPLAYED: "true", **({RUN_HEADER: held.run_id} if held.run_id else {})}
        return Response(held.body, status_code=held.status, media_type=held.media_type, headers=headers)
    claim = _Claim(store, caller.name, key)
    try:
        response = await answer()
    except BaseException:
        await run_in_threadpool(claim.store.release_receipt, claim.scope, claim.key)
        raise
    await _keep(claim, response)
    return response


def request_digest(method: str, path: str, body: bytes) -> str:
    """What a key's request is known by: its method, path and body (a repeat must match all three)."""
    return hashlib.sha256(b"%s %s\n%s" % (method.encode(), path.encode(), body)).hexdigest()


async def _keep(claim: _Claim, response: Response) -> None:
    """Keep the answer against the key; let the key go when the answer cannot be replayed (5xx, a stream)."""
    body = getattr(response, "body", None)
    try:
        if response.status_code >= 500 or not isinstance(body, bytes):
            await run_in_threadpool(claim.store.release_receipt, claim.scope, claim.key)
            return
        await run_in_threadpool(
            claim.store.complete_receipt, claim.scope, claim.key, status=response.status_code,
            media_type=response.headers.get("content-type", "application/json"), body=body,
            run_id=response.headers.get(RUN_HEADER), at=utc_now(),
        )  # fmt: skip
    except StoreError as exc:  # the answer stands; a retry waits out the claim (409), then runs again
        _log.warning("could not keep the answer to Idempotency-Key %r: %s", claim.key[:80], exc)
