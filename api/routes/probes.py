"""`GET /healthz` (the process answers) and `GET /readyz` (the guard can check)."""

from __future__ import annotations

import os
import socket
from typing import Any

from fastapi import APIRouter

from api.deps import GuardDep, StoreDep
from api.problems import responses
from api.schemas import Liveness, Readiness
from guard._timestamps import utc_now

router = APIRouter(tags=["probes"])
#: This process, as the store's probe table names it.
_PROBER = f"{socket.gethostname()}:{os.getpid()}"


@router.get("/healthz", response_model=Liveness, summary="Liveness")
async def healthz() -> dict[str, Any]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=responses(503), summary="Readiness")
def readyz(guard: GuardDep, store: StoreDep) -> dict[str, Any]:
    """The policy is loaded and the lineage store takes a write within its deadline; 503 otherwise."""
    store.probe_write(_PROBER, utc_now())
    policy = guard.policy
    return {"status": "ready", "policy": {"name": policy.name, "version": policy.version}, "store": store.url}
