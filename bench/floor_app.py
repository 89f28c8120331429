"""The service as `freshguard serve` builds it, plus three routes that stop short of a check: the floors of
`bench/bench_service_floor.py`. Not part of the product; served only by that bench.

- POST /floor/body: the request body read, nothing else (HTTP, the middlewares, routing);
- POST /floor/validated: the body validated as a `CheckRequest` (FastAPI and pydantic, as /v1/check does);
- POST /floor/decided: the records decided by a guard without a store, answered as /v1/check answers;
- POST /floor/stored: the same with the service's store (lineage committed), without the check route's
  dependencies (API keys, idempotency, metrics);
- POST /floor/raw-decided and /floor/raw-stored: /floor/decided and /floor/stored in plain ASGI, ahead of
  FastAPI and the middlewares (the body validated by pydantic from its JSON bytes).
"""

from __future__ import annotations

import orjson
from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from api.schemas import CheckRequest
from api.settings import Settings
from guard import Guard, LineageStore, load_policy


def app() -> ASGIApp:
    """The app factory granian serves (`--factory floor_app:app`)."""
    settings = Settings()
    application = create_app(settings)
    storeless = Guard(load_policy(settings.policy))
    stored = Guard(
        load_policy(settings.policy),
        store=LineageStore(
            settings.database_url,
            timeout_s=settings.store_timeout_s,
            group_commit=True,
            writer_process=settings.writer_process,
        ),
    )

    async def body(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    async def validated(check: CheckRequest) -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    async def decided(check: CheckRequest) -> Response:
        result = await storeless.acheck(check.records, pipeline=check.pipeline, consumer=check.consumer)
        return Response(orjson.dumps(result.to_dict()), media_type="application/json")

    async def kept(check: CheckRequest) -> Response:
        result = await stored.acheck(check.records, pipeline=check.pipeline, consumer=check.consumer)
        return Response(orjson.dumps(result.to_dict()), media_type="application/json")

    application.add_api_route("/floor/body", body, methods=["POST"], include_in_schema=False)
    application.add_api_route("/floor/validated", validated, methods=["POST"], include_in_schema=False)
    application.add_api_route("/floor/decided", decided, methods=["POST"], include_in_schema=False)
    application.add_api_route("/floor/stored", kept, methods=["POST"], include_in_schema=False)
    return _raw_routes(application, storeless, stored)


def _raw_routes(application: ASGIApp, storeless: Guard, stored: Guard) -> ASGIApp:
    """Two routes in plain ASGI, ahead of the app and its middlewares: /floor/raw-decided and /floor/raw-stored."""
    guards = {"/floor/raw-decided": storeless, "/floor/raw-stored": stored}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        guard = guards.get(scope.get("path", "")) if scope["type"] == "http" else None
        if guard is None:
            await application(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        check = CheckRequest.model_validate_json(b"".join(chunks))
        result = await guard.acheck(check.records, pipeline=check.pipeline, consumer=check.consumer)
        body = orjson.dumps(result.to_dict())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
