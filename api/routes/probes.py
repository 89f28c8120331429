"""`GET /healthz` (the process answers) and `GET /readyz` (the guard can check)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import GuardDep, StoreDep
from api.problems import responses
from api.schemas import Liveness, Readiness

router = APIRouter(tags=["probes"])


@router.get("/healthz", response_model=Liveness, summary="Liveness")
async def healthz() -> dict[str, Any]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=responses(503), summary="Readiness")
def readyz(guard: GuardDep, store: StoreDep) -> dict[str, Any]:
    """The policy is loaded and the lineage store answers a query; 503 otherwise."""
    store.list_runs(limit=1)
    policy = guard.policy
    return {"status": "ready", "policy": {"name": policy.name, "version": policy.version}, "store": store.url}
