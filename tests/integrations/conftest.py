"""Fixtures for the integrations: the example policy in-process and behind a real service, and customer documents.

Records are dated against the real clock, since a running service decides by its own clock: a fresh
Salesforce copy, a stale SAP copy (3 hours old) and two copies of one customer that disagree.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from fastapi import FastAPI

from api import Settings, create_app
from guard import Guard, LineageStore, ServiceClient, load_policy
from guard.integrations.checking import Checker
from tests.api.conftest import SAMPLE_KEY
from tests.conftest import EXAMPLE_POLICY, ts
from tests.integrations.upstream import Upstream, make_upstream
from tests.serving import free_port

T = TypeVar("T")


@dataclass(frozen=True)
class LiveService:
    """A Freshguard service listening on loopback (uvicorn in a thread), and its lineage store's URL."""

    base_url: str
    database_url: str
    app: FastAPI

    def store(self) -> LineageStore:
        return LineageStore(self.database_url, migrate=False)


def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn on a free loopback port until the generator is closed; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the service under uvicorn did not start within 30 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SIGNING_KEY", SAMPLE_KEY)


@pytest.fixture
def live_service(tmp_path: Path, signing_key: None) -> Iterator[LiveService]:
    """The service over the example policy and a SQLite store, open on loopback."""
    database_url = f"sqlite:///{tmp_path / 'service.db'}"
    app = create_app(Settings(policy=EXAMPLE_POLICY, database_url=database_url))
    for base_url in serve(app):
        yield LiveService(base_url, database_url, app)


@pytest.fixture
def service_client(live_service: LiveService) -> Iterator[ServiceClient]:
    with ServiceClient(live_service.base_url) as client:
        yield client


@pytest.fixture(params=["in-process", "service"])
def checker(request: pytest.FixtureRequest) -> Checker:
    """The same policy, as an in-process Guard and through a running service: every integration test runs twice."""
    fixture = "in_process" if request.param == "in-process" else "service_client"
    found: Checker = request.getfixturevalue(fixture)
    return found


@pytest.fixture
def in_process(tmp_path: Path, signing_key: None) -> Iterator[Guard]:
    """A guard over the example policy with its own SQLite store."""
    with Guard(load_policy(EXAMPLE_POLICY), store=f"sqlite:///{tmp_path / 'guard.db'}") as opened:
        yield opened


def customer(
    record_id: str, key: str, source: str, age: timedelta, *, credit_limit: float = 5000.0, name: str = "Ana Silva"
) -> dict[str, Any]:
    """A customer envelope of the example policy, read from `source` `age` ago by the real clock."""
    now = datetime.now(UTC)
    return {
        "id": record_id,
        "object": "customer",
        "key": key,
        "source": source,
        "observed_at": ts(now - age),
        "updated_at": ts(now - age - timedelta(minutes=2)),
        "fields": {"email": "ana@example.com", "name": name, "credit_limit": credit_limit, "tier": "gold"},
        "content": f"Customer {key}: {name}, gold tier, credit limit {credit_limit:.0f} EUR.",
    }


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """Fresh, stale and conflicting copies: cust-fresh is allowed; cust-stale is STALE; cust-sap-copy is a CONFLICT."""
    return [
        customer("cust-fresh", "C-1042", "salesforce", timedelta(minutes=5)),
        customer("cust-stale", "C-2001", "sap", timedelta(hours=3, minutes=2, seconds=30), name="Bruno Costa"),
        customer("cust-owner", "C-3003", "salesforce", timedelta(minutes=4), name="Carla Dias"),
        customer("cust-sap-copy", "C-3003", "sap", timedelta(minutes=3), credit_limit=9000.0, name="Carla Dias"),
    ]


#: What the guard decides about `records`: (id, action, reason codes).
EXPECTED = [
    ("cust-fresh", "allow", []),
    ("cust-stale", "block", ["STALE"]),
    ("cust-owner", "allow", []),
    ("cust-sap-copy", "block", ["CONFLICT"]),
]


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(main())` on a thread of its own: a session fixture (Playwright's) may hold this thread's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """The OpenAI stand-in, listening on loopback; `base_url` ends in /v1 as OpenAI's does."""
    stand_in = make_upstream()
    for base_url in serve(stand_in.app):
        stand_in.base_url = f"{base_url}/v1"
        yield stand_in
