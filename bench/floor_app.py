"""The service as `freshguard serve` builds it, plus three routes that stop short of a check: the floors of
`bench/bench_service_floor.py`. Not part of the product; served only by that bench.

- POST /floor/body: the request body read, nothing else (HTTP, the middlewares, routing);
- POST /floor/validated: the body validated as a `CheckRequest` (FastAPI and pydantic, as /v1/check does);
- POST /floor/decided: the records decided by a guard without a store, answered as /v1/check answers;
- POST /floor/stored: the same with the service's store (lineage committed), without the check route's
  dependencies (API keys, idempotency, metrics).
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request, Response

from api.app import create_app
from api.schemas import CheckRequest
from api.settings import Settings
from guard import Guard, LineageStore, load_policy


def app() -> FastAPI:
    """The app factory granian serves (`--factory floor_app:app`)."""
    settings = Settings()
    application = create_app(settings)
    storeless = Guard(load_policy(settings.policy))
    stored = Guard(
        load_policy(settings.policy),
        store=LineageStore(settings.database_url, timeout_s=settings.store_timeout_s, group_commit=True),
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
    return application
