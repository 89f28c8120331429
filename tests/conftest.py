"""Shared fixtures: the example policy, a fixed clock, record builders, and lineage stores on SQLite and PostgreSQL.

PostgreSQL tests run against the server named by FRESHGUARD_TEST_POSTGRES_URL
(for example postgresql+psycopg://postgres@127.0.0.1:5432/postgres). Each test
session gets a database of its own, dropped at the end. When
FRESHGUARD_REQUIRE_POSTGRES=1 (as in CI) a missing or unreachable server fails
the run instead of skipping those tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guard import Guard, LineageStore, Policy, load_policy, parse_policy

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
EXAMPLE_POLICY = POLICIES / "support-assistant.yaml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STRIPE_KEY = "test-stripe-key"

MINIMAL_POLICY = """
policy: support-bot
version: 3
clock_skew: 2m
sources:
  salesforce: {team: sales-ops}
  sap: {team: finance-systems}
  warehouse: {team: data-platform}
objects:
  customer:
    owner: salesforce
    replicas: [sap, warehouse]
    max_age: 1h
    warn_age: 30m
    fields:
      email: {type: str, required: true, pattern: '^[^@\\s]+@[^@\\s]+$'}
      credit_limit: {type: float, min: 0}
      tier: {type: str, in: [gold, silver, bronze]}
"""


def ts(moment: datetime) -> str:
    """ISO 8601 text with a Z, as integrations send it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def example_policy() -> Policy:
    return load_policy(EXAMPLE_POLICY)


@pytest.fixture(scope="session")
def minimal_policy() -> Policy:
    return parse_policy(MINIMAL_POLICY, origin="minimal.yaml")


@pytest.fixture
def guard(minimal_policy: Policy) -> Guard:
    """A guard over the minimal customer policy, without a store."""
    return Guard(minimal_policy)


RecordFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def record() -> RecordFactory:
    """Build a valid customer record from salesforce, observed 5 minutes before NOW; override any member."""
    counter = iter(range(1_000_000))

    def build(**overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": f"doc-{next(counter)}",
            "object": "customer",
            "key": "C-1042",
            "source": "salesforce",
            "observed_at": ts(NOW - timedelta(minutes=5)),
            "updated_at": ts(NOW - timedelta(minutes=7)),
            "fields": {"email": "ana@example.com", "credit_limit": 5000, "tier": "gold"},
            "content": "Customer C-1042: Ana, gold tier.",
        }
        for name, value in overrides.items():
            if value is ...:
                base.pop(name, None)
            else:
                base[name] = value
        return base

    return build


def _postgres_url() -> str | None:
    return os.environ.get("FRESHGUARD_TEST_POSTGRES_URL") or None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (skipped, or failed under CI, without a server)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = _postgres_url()
    required = os.environ.get("FRESHGUARD_REQUIRE_POSTGRES") == "1"
    if url is None:
        if required:
            pytest.fail("FRESHGUARD_REQUIRE_POSTGRES=1 but FRESHGUARD_TEST_POSTGRES_URL is not set")
        pytest.skip("set FRESHGUARD_TEST_POSTGRES_URL to run the PostgreSQL tests")
    parsed = make_url(url)
    name = f"freshguard_test_{uuid.uuid4().hex[:10]}"
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if required:
            pytest.fail(f"PostgreSQL at {parsed.host}:{parsed.port} is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    yield parsed.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_postgres(postgres_url: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied after the test (for tests that write to it)."""
    yield postgres_url
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A lineage store URL on SQLite (a file) and on PostgreSQL (emptied after each test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lineage.db'}"
    url: str = request.getfixturevalue("empty_postgres")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[LineageStore]:
    opened = LineageStore(store_url)
    yield opened
    opened.close()


@pytest.fixture
def stored_guard(minimal_policy: Policy, store_url: str) -> Iterator[Guard]:
    """A guard over the minimal customer policy that writes lineage to `store_url` (SQLite and PostgreSQL)."""
    with Guard(minimal_policy, store=store_url) as opened:
        yield opened


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (FRESHGUARD_REQUIRE_BROWSER=1 fails instead of skipping)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        _browser_missing("the playwright package is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _browser_missing(f"{CHROMIUM} is missing (bash scripts/system-packages installs Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def _browser_missing(why: str) -> None:
    if os.environ.get("FRESHGUARD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"the browser tests are required (FRESHGUARD_REQUIRE_BROWSER=1), but {why}")
    pytest.skip(why)
