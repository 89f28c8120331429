"""Lag and block rate over time, for the dashboard's charts."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from guard.tallies import Tally
from guard.timeline import block_rate_series, lag_series, reasons_over, sample_times
from tests.conftest import NOW


def beat(minutes_received: float, minutes_synced: float, writer: str = "") -> dict[str, object]:
    return {"source": "sap", "object": "customer", "writer": writer,
            "received_at": NOW + timedelta(minutes=minutes_received),
            "synced_at": NOW + timedelta(minutes=minutes_synced)}  # fmt: skip


def test_the_lag_grows_between_syncs_and_drops_at_each() -> None:
    beats = [beat(0, -2), beat(10, 8), beat(20, 17)]
    times = [NOW + timedelta(minutes=m) for m in (-5, 0, 5, 10, 25)]

    lags = [s.value for s in lag_series(beats, ("sap", "customer"), times)]

    assert lags == [None, 120, 420, 120, 480]


def test_the_stalest_writer_sets_the_lag_and_a_late_older_report_does_not_lower_it() -> None:
    beats = [beat(0, -1, "delta"), beat(0, -30, "full"), beat(5, -40, "delta")]  # delta's late report is older

    [sample] = lag_series(beats, ("sap", "customer"), [NOW + timedelta(minutes=10)])

    assert sample.value == 40 * 60  # full: 10 - (-30) minutes; delta keeps its newest sync (-1)


@given(st.lists(st.tuples(st.integers(0, 600), st.integers(-600, 0)), max_size=30), st.integers(0, 1200))
def test_a_lag_is_never_negative_and_only_known_after_the_first_heartbeat(
    reports: list[tuple[int, int]], at: int
) -> None:
    beats = [beat(received, received + synced) for received, synced in reports]

    [sample] = lag_series(beats, ("sap", "customer"), [NOW + timedelta(minutes=at)])

    if any(received <= at for received, _ in reports):
        assert sample.value is not None
        assert sample.value >= 0
    else:
        assert sample.value is None


@given(st.lists(st.tuples(st.integers(-120, 119), st.integers(0, 50), st.integers(0, 50)), max_size=40))
def test_buckets_split_the_window_and_keep_every_record_in_it(checks: list[tuple[int, int, int]]) -> None:
    tallies = [Tally("sap", "customer", records=n + b, blocked=b, checked_at=NOW + timedelta(minutes=m))
               for m, n, b in checks]  # fmt: skip
    start, end = NOW - timedelta(minutes=60), NOW + timedelta(minutes=60)

    buckets = block_rate_series(tallies, ("sap", "customer"), start, end, 12)

    inside = [(n, b) for m, n, b in checks if -60 <= m < 60]
    assert sum(b.records for b in buckets) == sum(n + b for n, b in inside)
    assert sum(b.blocked for b in buckets) == sum(b for _, b in inside)
    assert buckets[0].start == start
    assert buckets[-1].end == end
    assert all(b.block_rate is None or 0 <= b.block_rate <= 1 for b in buckets)


def test_sample_times_span_the_window_evenly() -> None:
    times = sample_times(NOW, NOW + timedelta(hours=1), 5)
    assert times == [NOW + timedelta(minutes=15 * i) for i in range(5)]
    assert sample_times(NOW, NOW, 5) == [NOW]


def test_reasons_are_added_up_per_point() -> None:
    tallies = [
        Tally("sap", "customer", reasons={"STALE": 2}),
        Tally("sap", "customer", reasons={"STALE": 1, "CONFLICT": 1}),
        Tally("warehouse", "customer", reasons={"STALE": 5}),
    ]
    assert reasons_over(tallies, ("sap", "customer")) == {"STALE": 3, "CONFLICT": 1}
    assert reasons_over(tallies) == {"STALE": 8, "CONFLICT": 1}
