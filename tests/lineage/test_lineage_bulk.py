"""A check of 100,000 records leaves 100,000 rows: the bulk write paths (executemany, COPY) lose nothing."""

from __future__ import annotations

import runpy

from guard import Action, Guard, Policy
from tests.conftest import NOW, ROOT
from tests.lineage.lineage_helpers import scalar


def test_a_check_of_100000_records_writes_100000_rows(example_policy: Policy, store_url: str) -> None:
    workload = runpy.run_path(str(ROOT / "bench" / "workload.py"))  # bench/ holds scripts, not a package
    records = workload["make_records"](100_000, NOW)

    with Guard(example_policy, store=store_url, environ={"STRIPE_SIGNING_KEY": workload["SIGNING_KEY"]}) as guard:
        result = guard.check(records, pipeline="bulk", now=NOW)

    rows = "SELECT count(*) FROM run_records WHERE run_id = :run"
    assert scalar(store_url, rows, run=result.run_id) == 100_000
    assert scalar(store_url, "SELECT count(DISTINCT position) FROM run_records") == 100_000
    assert scalar(store_url, "SELECT records FROM runs WHERE run_id = :run", run=result.run_id) == 100_000
    for action in Action:
        stored = scalar(store_url, "SELECT count(*) FROM run_records WHERE action = :action", action=action.value)
        assert stored == result.counts[action]
    last = "SELECT record_id FROM run_records WHERE position = 99999"
    assert scalar(store_url, last) == result.decisions[99_999].id == "r99999"
