"""`freshguard serve --workers 2` on one PostgreSQL: concurrent clients lose and duplicate nothing."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from api.keys import hash_key
from tests.api.conftest import SAMPLE_KEY
from tests.conftest import EXAMPLE_POLICY, ts
from tests.serving import free_port, freshguard_serve, serving

PIPELINE_KEY = "pip-workers-5c1e7a9d3b2f4e6a8c0d"
CRM_KEY = "src-workers-9a8b7c6d5e4f3a2b1c0d"
ADMIN_KEY = "adm-workers-1f2e3d4c5b6a79880a1b"
ENTITIES = [f"C-{n}" for n in range(20)]
CLIENTS, CHECKS_EACH, RECORDS_EACH = 4, 25, 5

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_workers(empty_postgres: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The service with two worker processes on PostgreSQL; its base URL and its metrics folder."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("FRESHGUARD_")},
        "STRIPE_SIGNING_KEY": SAMPLE_KEY,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "FRESHGUARD_API_KEYS": f"bot:pipeline:{hash_key(PIPELINE_KEY)},crm:source:salesforce:{hash_key(CRM_KEY)},"
        f"ops:admin:{hash_key(ADMIN_KEY)}",
    }
    command = freshguard_serve(
        "--policy", str(EXAMPLE_POLICY), "--database", empty_postgres, "--workers", "2", port=port
    )
    with serving(command, port=port, env=env, log=tmp_path / "serve.log", ready_within_s=60) as served:
        yield served.base, metrics_dir


def _owner_records(rng: random.Random, now: datetime, tag: str) -> list[dict[str, Any]]:
    records = []
    for n in range(RECORDS_EACH):
        updated = now - timedelta(seconds=rng.randrange(60, 600))
        records.append({
            "id": f"{tag}-{n}", "object": "customer", "key": rng.choice(ENTITIES), "source": "salesforce",
            "observed_at": ts(now - timedelta(seconds=30)), "updated_at": ts(updated),
            "fields": {"email": "ana@example.com", "name": "Ana", "tier": "gold"},
        })  # fmt: skip
    return records


def _client_work(base: str, client: int, now: datetime) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """One client's checks and change notifications, each on a new connection (so both workers get some)."""
    rng = random.Random(client)
    run_ids: list[str] = []
    sent: list[dict[str, Any]] = []
    changes: list[str] = []
    for n in range(CHECKS_EACH):
        records = _owner_records(rng, now, f"c{client}-{n}")
        with httpx2.Client(base_url=base, timeout=30) as http:
            answer = http.post(
                "/v1/check", json={"pipeline": f"client-{client}", "records": records},
                headers={"Authorization": f"Bearer {PIPELINE_KEY}"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            run_ids.append(answer.json()["run_id"])
            sent += records
            if n % 5 == 0:
                changed = ts(now - timedelta(seconds=rng.randrange(0, 60)))
                posted = http.post(
                    "/v1/changes", json=[{"object": "customer", "key": rng.choice(ENTITIES), "updated_at": changed}],
                    headers={"Authorization": f"Bearer {CRM_KEY}"},
                )  # fmt: skip
                assert posted.status_code == 200, posted.text
                changes.append(posted.request.content.decode())
    return run_ids, sent, changes


def test_two_workers_write_every_run_and_watermark_once(two_workers: tuple[str, Path], empty_postgres: str) -> None:
    base, metrics_dir = two_workers
    now = datetime.now(UTC)

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(lambda client: _client_work(base, client, now), range(CLIENTS)))

    run_ids = [run_id for ids, _, _ in outcomes for run_id in ids]
    sent = [record for _, records, _ in outcomes for record in records]
    engine = sa.create_engine(empty_postgres)
    try:
        with engine.connect() as conn:
            stored_runs = [row[0] for row in conn.execute(sa.text("SELECT run_id FROM runs"))]
            per_run: dict[str, int] = dict(
                conn.execute(sa.text("SELECT run_id, count(*) FROM run_records GROUP BY run_id")).all()
            )
            marks: dict[str, datetime] = dict(
                conn.execute(sa.text("SELECT key, updated_at FROM watermarks WHERE object = 'customer'")).all()
            )
    finally:
        engine.dispose()

    assert len(run_ids) == CLIENTS * CHECKS_EACH
    assert sorted(stored_runs) == sorted(run_ids)  # none lost, none twice
    assert per_run == dict.fromkeys(run_ids, RECORDS_EACH)
    changes = [change for _, _, posted in outcomes for change in posted]
    newest: dict[str, datetime] = {}
    for key, when in [(r["key"], r["updated_at"]) for r in sent] + [_change(c) for c in changes]:
        moment = datetime.fromisoformat(when)
        newest[key] = max(newest.get(key, moment), moment)
    assert {key: mark.astimezone(UTC) for key, mark in marks.items()} == newest

    pids = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
    assert len(pids) >= 2, "both workers should have served checks"
    families = text_string_to_metric_families(httpx2.get(f"{base}/metrics", headers={
        "Authorization": f"Bearer {PIPELINE_KEY}"}, timeout=30).text)  # fmt: skip
    checks = sum(
        s.value for f in families if f.name == "freshguard_checks" for s in f.samples if s.name.endswith("_total")
    )
    assert checks == len(run_ids)  # the counters of both workers, added up


def _change(body: str) -> tuple[str, str]:
    [change] = json.loads(body)
    return change["key"], change["updated_at"]


def test_a_policy_published_on_one_worker_is_in_force_on_both_within_the_sync_bound(
    two_workers: tuple[str, Path],
) -> None:
    """Each worker asks the store for a newer policy version at most once a second (FRESHGUARD_POLICY_SYNC_S):
    a version published through one worker is in force on every worker within that bound."""
    base, _ = two_workers
    text = EXAMPLE_POLICY.read_text().replace("version: 1", "version: 2", 1)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    pipeline = {"Authorization": f"Bearer {PIPELINE_KEY}"}

    def versions_seen(checks: int) -> set[int]:
        seen = set()
        for _ in range(checks):
            with httpx2.Client(base_url=base, timeout=30) as http:  # a new connection: either worker may take it
                answer = http.post("/v1/check", json={"pipeline": "sync", "records": []}, headers=pipeline)
                assert answer.status_code == 200, answer.text
                seen.add(answer.json()["policy"]["version"])
        return seen

    assert versions_seen(10) == {1}
    published = httpx2.put(
        f"{base}/v1/policy", content=text, headers={**admin, "content-type": "application/yaml"}, timeout=30
    )
    assert published.status_code == 200, published.text
    time.sleep(1.5)  # the bound (1 s), and slack

    assert versions_seen(30) == {2}
