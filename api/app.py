"""`create_app(settings)`: the FastAPI application, with the guard built at start-up (nothing at import)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.keys import KeyRing, load_keyring
from api.limits import BodyLimit
from api.problems import install_problem_handlers, problem_json_openapi
from api.routes import changes, check, lineage, probes, runs, sources
from api.settings import Settings
from guard import Guard, __version__, load_policy


def build_guard(settings: Settings) -> Guard:
    """The guard the settings describe: their policy, their lineage store (opened and migrated)."""
    return Guard(load_policy(settings.policy), store=settings.database_url)


def build_keyring(settings: Settings) -> KeyRing:
    """The API keys the settings name (keys file and FRESHGUARD_API_KEYS); empty in open mode."""
    return load_keyring(settings.keys_file, settings.api_keys)


def create_app(settings: Settings, keyring: KeyRing | None = None) -> FastAPI:
    """The guard service for these settings; the guard (and keys, unless given) are loaded when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.keyring is None:
            app.state.keyring = await run_in_threadpool(build_keyring, settings)
        guard = await run_in_threadpool(build_guard, settings)
        app.state.guard = guard
        try:
            yield
        finally:
            app.state.guard = None
            guard.close()

    app = FastAPI(
        title="Freshguard",
        version=__version__,
        summary="Decides, before a model sees it, whether each record may be used.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.guard = None
    app.state.keyring = keyring
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    install_problem_handlers(app)
    for module in (check, changes, sources, runs, lineage, probes):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_json_openapi(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
