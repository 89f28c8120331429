"""A check of 100,000 records leaves 100,000 rows: the bulk write paths (executemany, COPY) lose nothing."""

from __future__ import annotations

from datetime import timedelta

from guard import Action, Guard, Policy
from tests.conftest import NOW, ts
from tests.lineage.lineage_helpers import scalar


def test_a_check_of_100000_records_writes_100000_rows(minimal_policy: Policy, store_url: str) -> None:
    # Ages from 0 to 99 minutes: fresh, aging (past 30m) and stale (past 1h); every 7th record is malformed.
    records = [
        {
            "id": f"r{n}",
            "object": "customer",
            "key": f"C-{n}",
            "source": "salesforce" if n % 3 else "sap",
            "observed_at": "yesterday" if n % 7 == 0 else ts(NOW - timedelta(minutes=n % 100)),
            "fields": {"email": f"user{n}@example.com", "tier": "gold"},
        }
        for n in range(100_000)
    ]

    with Guard(minimal_policy, store=store_url) as guard:
        result = guard.check(records, pipeline="bulk", now=NOW)

    assert all(result.counts[action] > 10_000 for action in Action)
    rows = "SELECT count(*) FROM run_records WHERE run_id = :run"
    assert scalar(store_url, rows, run=result.run_id) == 100_000
    assert scalar(store_url, "SELECT count(DISTINCT position) FROM run_records") == 100_000
    assert scalar(store_url, "SELECT records FROM runs WHERE run_id = :run", run=result.run_id) == 100_000
    for action in Action:
        stored = scalar(store_url, "SELECT count(*) FROM run_records WHERE action = :action", action=action.value)
        assert stored == result.counts[action]
    last = "SELECT record_id FROM run_records WHERE position = 99999"
    assert scalar(store_url, last) == result.decisions[99_999].id == "r99999"
