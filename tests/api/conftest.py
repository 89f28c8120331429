"""Fixtures for the HTTP service: settings over the example policy and a SQLite store, a client, fresh records."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api import Settings, create_app
from api.keys import hash_key
from tests.conftest import EXAMPLE_POLICY, RecordFactory, ts
from tests.serving import AppClient, free_port, freshguard_serve, serving

SAMPLE_KEY = "example-stripe-key"  # the key policies/support-assistant.records.jsonl is signed with


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The example policy, a SQLite lineage store in tmp_path, default limits."""
    monkeypatch.setenv("STRIPE_SIGNING_KEY", SAMPLE_KEY)
    # The watcher's own schedule is off in tests: they evaluate when they mean to (app.state.watcher).
    return Settings(policy=EXAMPLE_POLICY, database_url=f"sqlite:///{tmp_path / 'lineage.db'}", watch_every_s=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[AppClient]:
    """A client of the app, started (lifespan run) and stopped around the test."""
    with AppClient(create_app(settings), raise_server_exceptions=False) as started:
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


KEYS = {
    "ops-admin": ("admin", None, "adm-3f9c2d7e1b8a4c6f9e0d2b7a5c3e1f8d"),
    "support-bot": ("pipeline", None, "pip-8e1a6c4b2d9f7e3a5c1b8d6f4a2e9c7b"),
    "dashboard": ("viewer", None, "vwr-5b3d9f1e7c2a8b4d6f0e3c9a1d7b5f2e"),
    "erp-sync": ("source", "sap", "src-2c7e4a9d1f6b3e8c5a0d7f2b9e4c1a6d"),
}


def key_of(name: str) -> str:
    return KEYS[name][2]


def key_entries() -> list[dict[str, str]]:
    entries = []
    for name, (role, source, key) in KEYS.items():
        entry = {"name": name, "role": role, "key_sha256": hash_key(key)}
        if source is not None:
            entry["source"] = source
        entries.append(entry)
    return entries


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    """A YAML keys file with one key of each role (the erp-sync source key bound to sap)."""
    path = tmp_path / "keys.yaml"
    lines = []
    for entry in key_entries():
        lines.append(f"- name: {entry['name']}")
        lines += [f"  {member}: {value}" for member, value in entry.items() if member != "name"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def keyed(settings: Settings, keys_file: Path) -> Iterator[AppClient]:
    """A client of the app with the keys file configured."""
    with AppClient(
        create_app(settings.model_copy(update={"keys_file": keys_file})), raise_server_exceptions=False
    ) as c:
        yield c


def auth_as(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key_of(name)}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`freshguard serve` in a subprocess on a free loopback port: its base URL once /readyz answers, its log."""
    port = free_port()
    env = {**os.environ, "STRIPE_SIGNING_KEY": SAMPLE_KEY, "FRESHGUARD_POLICY": str(EXAMPLE_POLICY)}
    command = freshguard_serve("--database", f"sqlite:///{tmp_path / 'l.db'}", port=port)
    with serving(command, port=port, env=env, log=tmp_path / "serve.log") as served:
        yield served.base, served.log


def seed_store(url: str, hours: int = 24) -> None:
    """`hours` of history in the store at `url` (scripts/seed_operations.py: checks, heartbeats, incidents)."""
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "seed_operations.py"), url,
         "--hours", str(hours)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
