"""Dependencies as `Annotated` aliases: what a route needs, taken from the app's state (overridable in tests).

They are `async def` though they do not wait: FastAPI runs a plain `def` dependency in its thread pool,
and three round trips to the pool cost a check more than its decision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, require_roles
from api.keys import Role
from api.metrics import ServiceMetrics
from api.settings import Settings
from guard import Guard, LineageStore
from guard.errors import ConfigurationError, StoreError


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_guard(request: Request) -> Guard:
    """The guard built at start-up; 503 until it exists."""
    guard: Guard | None = getattr(request.app.state, "guard", None)
    if guard is None:
        raise ConfigurationError("the guard is not ready: its policy and lineage store are still being loaded")
    return guard


async def get_metrics(request: Request) -> ServiceMetrics:
    """The service's Prometheus metrics."""
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
GuardDep = Annotated[Guard, Depends(get_guard)]


async def get_current_guard(request: Request, guard: GuardDep, settings: SettingsDep) -> Guard:
    """The guard, switched first to the newest policy version published (by any worker).

    The store is asked at most once every `policy_sync_s` seconds (per worker): a version another
    worker publishes is in force here within that long; one published here, at once.
    """
    return await synced_guard(request.app.state, guard, settings)


async def synced_guard(state: Any, guard: Guard, settings: Settings) -> Guard:
    """`guard`, switched first to the newest policy version published, if this worker's `state` says it is time
    to look (at most once every `policy_sync_s`)."""
    now = time.monotonic()
    if now >= getattr(state, "policy_due", 0.0):
        state.policy_due = now + settings.policy_sync_s
        await run_in_threadpool(guard.sync_policy)
    return guard


#: For routes that decide or validate under the policy: it is brought up to date first.
CurrentGuardDep = Annotated[Guard, Depends(get_current_guard)]


@dataclass(frozen=True, slots=True)
class Service:
    """What a route that decides needs, in one dependency: FastAPI solves each dependency on every request."""

    guard: Guard  # switched to the newest policy version first, as `CurrentGuardDep`
    settings: Settings
    metrics: ServiceMetrics


async def get_service(request: Request) -> Service:
    """The guard (its policy brought up to date), the settings and the metrics."""
    state = request.app.state
    settings: Settings = state.settings
    guard = await get_current_guard(request, await get_guard(request), settings)
    return Service(guard, settings, state.metrics)


#: For routes on the hot path (checks, the gateway): one dependency instead of three with their own.
ServiceDep = Annotated[Service, Depends(get_service)]


async def get_store(guard: GuardDep) -> LineageStore:
    """The guard's lineage store."""
    if guard.store is None:
        raise StoreError("this service runs without a lineage store, so it has no history to show")
    return guard.store


StoreDep = Annotated[LineageStore, Depends(get_store)]


#: Who may run checks: pipeline keys (and admin).
PipelineCaller = Annotated[Caller, Depends(require_roles(Role.PIPELINE))]
#: Who may post change notifications: source keys (for the objects their source owns) and admin.
SourceCaller = Annotated[Caller, Depends(require_roles(Role.SOURCE))]
#: Who may read runs and lineage: viewer and pipeline keys (and admin); a pipeline may look up its own runs.
ReaderCaller = Annotated[Caller, Depends(require_roles(Role.VIEWER, Role.PIPELINE))]


#: The `Idempotency-Key` header (read by `api.idempotency`; declared here so that the API document shows it).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes a retry safe: a repeat with the same key and body within 24 h gets the first answer "
        "(same run id, no new run), with `Idempotent-Replayed: true`. Keys are 1 to 255 printable ASCII "
        "characters, scoped to the API key.",
    ),
]
