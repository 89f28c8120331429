"""The dashboard's SVG charts: objectives drawn and named, values past them marked, text escaped."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api.dashboard import charts, words
from tests.conftest import NOW


def test_a_line_chart_marks_each_value_past_its_objective_and_names_the_objective() -> None:
    times = [NOW + timedelta(minutes=m) for m in range(5)]
    axis = charts.TimeAxis(times[0], times[-1])
    svg = charts.line_chart(charts.Series(times, [60, 600, None, 1200, 30]), axis=axis, title="Lag <of sap>",
                            describe="d", objective=900, objective_label="agreed 15m", fmt=words.duration)  # fmt: skip

    assert svg.count("<circle") == 1  # one value (1200 s) past 900 s
    assert "agreed 15m" in svg
    assert 'class="no-data"' in svg  # the gap is drawn as no data, not as zero
    assert "stroke-dasharray" in svg
    assert "Lag &lt;of sap&gt;" in svg
    assert svg.count("<polyline") == 2  # the None breaks the line


def test_a_bar_chart_hatches_bars_over_the_budget_and_says_so() -> None:
    starts = [NOW + timedelta(minutes=10 * i) for i in range(3)]
    axis = charts.TimeAxis(starts[0], starts[-1] + timedelta(minutes=10))
    svg = charts.bar_chart(starts, [0.01, 0.05, None], axis=axis, title="t", describe="d", objective=0.02,
                           objective_label="budget 2.0%", fmt=words.percent)  # fmt: skip

    assert svg.count('fill="url(#over-520)"') == 1
    assert "(over the objective)" in svg
    assert svg.count('class="no-data"') == 1  # the span without records is no data, not a zero bar


def test_charts_without_data_say_so() -> None:
    hour = charts.TimeAxis(NOW - timedelta(hours=1), NOW)
    empty = charts.line_chart(charts.Series([NOW], [None]), axis=hour, title="t", describe="d", objective=None,
                              objective_label="", fmt=words.duration)  # fmt: skip
    assert "no data in this window" in empty
    assert "0s" not in empty  # no y ticks invented for nothing
    assert "nothing blocked or warned" in charts.reason_bars([], title="t")


def test_durations_read_like_people_write_them() -> None:
    cases = {None: "—", 40: "40s", 60: "1m", 2820: "47m", 3600: "1h", 11100: "3h 5m",
             86400: "1d", 180000: "2d 2h"}  # fmt: skip
    assert {seconds: words.duration(seconds) for seconds in cases} == cases
    assert words.percent(0.0004) == "0.04%"
    assert words.percent(0.025) == "2.5%"


@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
    span=st.sampled_from([timedelta(hours=1), timedelta(hours=6), timedelta(hours=24), timedelta(days=7)]),
)
def test_time_ticks_fall_on_round_moments_inside_the_axis(start: datetime, span: timedelta) -> None:
    axis = charts.TimeAxis(start, start + span)
    ticks = axis.ticks()

    assert 3 <= len(ticks) <= 6
    assert all(axis.start <= tick <= axis.end for tick in ticks)
    assert all(tick.second == 0 and tick.minute % 5 == 0 for tick in ticks)
    assert len({(b - a) for a, b in itertools.pairwise(ticks)}) == 1  # evenly spaced


@given(top=st.floats(min_value=0.5, max_value=10 * 86400), kind=st.sampled_from(["duration", "share"]))
def test_y_axes_end_on_a_round_value_above_every_point(top: float, kind: str) -> None:
    if kind == "share":
        top = top / (10 * 86400)
    end, ticks = charts.round_top(top, kind)

    assert end >= top
    assert 2 <= len(ticks) <= 6
    assert ticks[0] == 0
    assert ticks[-1] == end
    if kind == "duration":  # whole seconds, minutes or hours, as people read a clock
        assert all(tick % 1 == 0 for tick in ticks)


def test_the_charts_of_a_page_share_their_time_axis_and_say_utc() -> None:
    axis = charts.TimeAxis(NOW - timedelta(hours=24), NOW)
    times = [NOW - timedelta(hours=24) + timedelta(minutes=15 * i) for i in range(97)]
    lag = charts.line_chart(charts.Series(times, [60.0] * 97), axis=axis, title="t", describe="d", objective=900,
                            objective_label="x", fmt=words.duration)  # fmt: skip
    rate = charts.bar_chart(times[:-1:2], [0.01] * 48, axis=axis, title="t", describe="d", objective=0.02,
                            objective_label="y", fmt=words.percent)  # fmt: skip

    def ticks(svg: str) -> list[str]:
        return re.findall(r'text-anchor="middle" class="axis">([^<]+)<', svg)

    assert ticks(lag) == ticks(rate) != []
    assert "time (UTC)" in lag
    assert "time (UTC)" in rate


def test_warn_and_block_reasons_differ_by_more_than_colour() -> None:
    svg = charts.reason_bars([("STALE", 9), ("AGING", 3)], title="t", warns=frozenset({"AGING"}))

    assert "✕ block" in svg
    assert "! warn" in svg
    assert 'fill="url(#warned-520)"' in svg  # striped, not only amber
