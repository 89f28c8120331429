"""Fixtures for the HTTP service: settings over the example policy and a SQLite store, a client, fresh records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from tests.conftest import EXAMPLE_POLICY, RecordFactory, ts

SAMPLE_KEY = "example-stripe-key"  # the key policies/support-assistant.records.jsonl is signed with


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The example policy, a SQLite lineage store in tmp_path, default limits."""
    monkeypatch.setenv("STRIPE_SIGNING_KEY", SAMPLE_KEY)
    return Settings(policy=EXAMPLE_POLICY, database_url=f"sqlite:///{tmp_path / 'lineage.db'}")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of the app, started (lifespan run) and stopped around the test."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as started:
        yield started


@pytest.fixture
def fresh(record: RecordFactory) -> Callable[..., dict[str, Any]]:
    """A valid customer record of the example policy, observed 5 minutes before the real clock."""
    now = datetime.now(UTC)

    def build(**overrides: Any) -> dict[str, Any]:
        base = {
            "observed_at": ts(now - timedelta(minutes=5)),
            "updated_at": ts(now - timedelta(minutes=7)),
            "fields": {"email": "ana@example.com", "name": "Ana Silva", "credit_limit": 5000, "tier": "gold"},
        }
        return record(**{**base, **overrides})

    return build
