"""`create_app(settings)`: the FastAPI application, with the guard built at start-up (nothing at import)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from api import dashboard
from api.fast_check import FastCheck
from api.hosts import LoopbackHostsOnly
from api.keys import KeyRing, load_keyring
from api.limits import BodyLimit
from api.metrics import ServiceMetrics
from api.problems import install_problem_handlers, problem_json_openapi
from api.routes import changes, check, health, incidents, lineage, metrics, policy, probes, runs, sources
from api.routes.litellm import router as litellm_router
from api.routes.openai_gateway import router as openai_gateway_router
from api.settings import Settings
from guard import Guard, LineageStore, Policy, VersionConflictError, __version__, load_policy
from guard.integrations.openlineage import emitter_from_environment
from guard.watch import Watcher

_log = logging.getLogger("freshguard.api")


_DESCRIPTION = """
Freshguard checks every record a pipeline is about to show a model: provenance, ownership (one system
of record per object), the freshness SLA, the object's contract and conflicts with other records about
the same entity. Each record is allowed, warned or blocked, with reasons in words; every check is kept
in the lineage store with the policy version it ran under.

**Keys.** With API keys configured, every `/v1` endpoint needs one: `Authorization: Bearer <key>`
(or `X-API-Key`). Roles: `pipeline` (check, consumption), `source` (changes and heartbeats of its one
source), `viewer` (reads), `admin` (everything, and the policy).

**Errors** are `application/problem+json` (RFC 9457): `detail` says what is wrong and what to do,
`errors` names every location for a 422. A check that ran answers 200 whatever its verdict.
"""

_TAGS = [
    {"name": "check", "description": "Decide records before inference."},
    {"name": "changes", "description": "Owners tell the guard which entities changed (supersession)."},
    {"name": "sources", "description": "Integrations report completed syncs (heartbeats)."},
    {"name": "runs", "description": "The check history, and the model calls that consumed each run."},
    {"name": "lineage", "description": "Everything known about one entity."},
    {"name": "health", "description": "SLA state per integration point."},
    {"name": "incidents", "description": "Breaches from detection to recovery, with what they touched."},
    {"name": "policy", "description": "The policy in force, publishing a new version, the history."},
    {"name": "probes", "description": "Liveness and readiness, for orchestrators; open without a key."},
    {"name": "metrics", "description": "Prometheus metrics."},
]


def build_guard(settings: Settings) -> Guard:
    """The guard the settings describe: their lineage store (opened and migrated) and the newest policy.

    The policy file is published to the store when its version is newer than every version there;
    otherwise the newest published version is in force (a PUT /v1/policy outlives a restart).
    """
    policy = load_policy(settings.policy)
    # Concurrent checks share the store's transactions (group commit); every operation has a deadline.
    store = LineageStore(
        settings.database_url,
        timeout_s=settings.store_timeout_s,
        group_commit=True,
        writer_process=settings.writer_process,
    )
    guard = Guard(policy, store=store)
    try:
        _start_policy(guard, policy, settings.policy.read_text(encoding="utf-8"), str(settings.policy))
    except BaseException:
        close_guard(guard)
        raise
    return guard


def close_guard(guard: Guard) -> None:
    """Close a guard `build_guard` made, and its store (after the checks it holds are committed)."""
    guard.close()
    if guard.store is not None:
        guard.store.close()


def _start_policy(guard: Guard, policy: Policy, text: str, path: str) -> None:
    store = guard.store
    if store is None:
        return
    latest = store.latest_policy_version()
    if latest is None or policy.version > latest:
        try:
            guard.publish_policy(policy, text=text, media_type="application/yaml", published_by=f"file:{path}")
            _log.info("published policy %s version %d from %s", policy.name, policy.version, path)
        except VersionConflictError:  # another worker published it first
            guard.sync_policy(force=True)
        return
    guard.sync_policy(force=True)
    active = guard.policy
    if active.version != policy.version or active.content_hash() != policy.content_hash():
        _log.warning(
            "the policy file %s is version %d, but version %d (%s) is published in the lineage store; checks run "
            "under version %d. Raise the file's version to publish it at start-up, or PUT /v1/policy.",
            path, policy.version, active.version, active.name, active.version,
        )  # fmt: skip


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
        # FRESHGUARD_OPENLINEAGE=true: every check as an OpenLineage event (client: openlineage.yml, OPENLINEAGE_*)
        app.state.lineage_emitter = emitter = await run_in_threadpool(emitter_from_environment, guard)
        watcher = Watcher(guard, retention=settings.retention())
        if settings.watch_every_s > 0:
            watcher.start(settings.watch_every_s)
        app.state.watcher = watcher
        # What start-up built (the policy, its pandera schemas, modules) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it mid-request (p99 of a check
        # 101 -> 36 ms on bench/bench_service.py). Checks' own garbage is collected as before.
        gc.freeze()
        try:
            yield
        finally:
            watcher.stop()
            if emitter is not None:
                await run_in_threadpool(emitter.close)
            app.state.guard = None
            close_guard(guard)

    # Swagger UI and ReDoc from files served by the app itself: the docs work offline, with no CDN.
    app = FastAPIOffline(
        title="Freshguard",
        version=__version__,
        summary="Decides, before a model sees it, whether each record may be used.",
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.guard = None
    app.state.metrics = ServiceMetrics(lambda: app.state.guard)
    app.state.keyring = keyring
    app.add_middleware(FastCheck)  # innermost: behind the body limits and the Host check
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, grace_s=settings.body_timeout_s)
    # Outermost: in open mode, a request addressed to a name that is not loopback gets no further.
    app.add_middleware(LoopbackHostsOnly, open_mode=lambda: not app.state.keyring)
    install_problem_handlers(app)
    dashboard.install(app)
    for module in (check, changes, sources, runs, lineage, health, incidents, policy, probes, metrics):
        app.include_router(module.router)
    for router in (openai_gateway_router, litellm_router):  # integrations: the OpenAI gateway, the LiteLLM guardrail
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_json_openapi(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
