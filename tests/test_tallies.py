"""Tallies per integration point: counts, reasons, and age percentiles estimated from a histogram."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard import Guard, Policy, tally_check
from guard.tallies import AGE_BOUNDS_S, Tally, bucket_quantile, merge_tallies
from tests.conftest import NOW, RecordFactory, ts

ages = st.lists(st.floats(min_value=0, max_value=10 * 86400, allow_nan=False), min_size=1, max_size=200)


def _histogram(values: list[float]) -> Tally:
    tally = Tally("sap", "customer")
    for value in values:
        position = next((i for i, bound in enumerate(AGE_BOUNDS_S) if value <= bound), len(AGE_BOUNDS_S))
        tally.age_buckets[position] += 1
        tally.age_max_s = max(tally.age_max_s or 0.0, value)
    return tally


@given(ages, st.floats(min_value=0, max_value=1), st.floats(min_value=0, max_value=1))
def test_an_age_quantile_rises_with_the_quantile_and_stays_within_what_was_seen(
    values: list[float], low: float, high: float
) -> None:
    low, high = sorted((low, high))
    tally = _histogram(values)

    lower, upper = tally.age_quantile(low), tally.age_quantile(high)

    assert lower is not None
    assert upper is not None
    assert 0 <= lower <= upper <= max(values)


@given(ages)
def test_an_age_quantile_lands_in_the_bucket_of_the_true_quantile(values: list[float]) -> None:
    """The estimate errs by at most the width of the bucket the exact median falls in."""
    tally = _histogram(values)
    exact = sorted(values)[max(0, -(-len(values) // 2) - 1)]
    position = next((i for i, bound in enumerate(AGE_BOUNDS_S) if exact <= bound), len(AGE_BOUNDS_S))
    lower = AGE_BOUNDS_S[position - 1] if position > 0 else 0.0
    upper = AGE_BOUNDS_S[position] if position < len(AGE_BOUNDS_S) else max(values)

    estimate = tally.age_quantile(0.5)

    assert estimate is not None
    assert lower - 1e-9 <= estimate <= upper + 1e-9


def test_no_aged_records_means_no_quantile() -> None:
    assert Tally("sap", "customer").age_quantile(0.5) is None
    assert bucket_quantile([0] * (len(AGE_BOUNDS_S) + 1), 0.5, None) == 0


def test_a_check_is_tallied_per_integration_point(minimal_policy: Policy, record: RecordFactory) -> None:
    records = [
        record(id="a", source="sap", key="C-1"),
        record(id="b", source="sap", key="C-2", observed_at=ts(NOW - timedelta(hours=5))),
        record(id="c", source="sap", key="C-3", observed_at=ts(NOW - timedelta(minutes=45))),
        record(id="d", source="warehouse", key="C-4", fields={"email": "nope"}),
        {"id": "e"},
    ]
    result = Guard(minimal_policy).check(records, pipeline="p", now=NOW)

    tallies = {(t.source, t.object): t for t in tally_check(result.decisions)}

    assert set(tallies) == {("sap", "customer"), ("warehouse", "customer"), (None, None)}
    sap = tallies[("sap", "customer")]
    assert (sap.records, sap.allowed, sap.warned, sap.blocked) == (3, 1, 1, 1)
    assert sap.reasons == {"STALE": 1, "AGING": 1}
    assert sap.age_max_s == pytest.approx(5 * 3600)
    assert tallies[("warehouse", "customer")].reasons == {"SCHEMA_VIOLATION": 1}
    assert tallies[(None, None)].reasons == {"INVALID_RECORD": 1}
    assert sum(t.records for t in tallies.values()) == len(records)


def test_merged_tallies_equal_one_tally_of_every_record(minimal_policy: Policy, record: RecordFactory) -> None:
    guard = Guard(minimal_policy)
    first = [record(id=f"a{n}", key=f"C-{n}", source="sap") for n in range(5)]
    second = [
        record(id=f"b{n}", key=f"C-{n + 10}", source="sap", observed_at=ts(NOW - timedelta(hours=n))) for n in range(5)
    ]

    merged = merge_tallies(
        [*tally_check(guard.check(first, pipeline="p", now=NOW).decisions),
         *tally_check(guard.check(second, pipeline="p", now=NOW).decisions)]
    )  # fmt: skip
    whole = tally_check(guard.check(first + second, pipeline="p", now=NOW).decisions)

    assert list(merged.values()) == whole


def test_a_check_is_counted_once_however_often_its_tallies_are_asked_for(guard: Guard, record: RecordFactory) -> None:
    """The store and the metrics both ask for a check's tallies: the second asks the first's answer."""
    table = guard.check([record(), record(key="C-2")], pipeline="rag", now=NOW).decisions

    assert tally_check(table) is tally_check(table)
