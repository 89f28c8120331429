"""The dashboard's SVG charts: objectives drawn and named, values past them marked, text escaped."""

from __future__ import annotations

from datetime import timedelta

from api.dashboard import charts, words
from tests.conftest import NOW


def test_a_line_chart_marks_each_value_past_its_objective_and_names_the_objective() -> None:
    times = [NOW + timedelta(minutes=m) for m in range(5)]
    svg = charts.line_chart(charts.Series(times, [60, 600, None, 1200, 30]), title="Lag <of sap>", describe="d",
                            objective=900, objective_label="agreed 15 min", fmt=words.duration)  # fmt: skip

    assert svg.count("<circle") == 1  # one value (1200 s) past 900 s
    assert "agreed 15 min" in svg
    assert "stroke-dasharray" in svg
    assert "Lag &lt;of sap&gt;" in svg
    assert svg.count("<polyline") == 2  # the None breaks the line


def test_a_bar_chart_hatches_bars_over_the_budget_and_says_so() -> None:
    starts = [NOW + timedelta(minutes=10 * i) for i in range(3)]
    svg = charts.bar_chart(starts, [0.01, 0.05, None], title="t", describe="d", objective=0.02,
                           objective_label="budget 2.0%", fmt=words.percent)  # fmt: skip

    assert svg.count('fill="url(#over)"') == 1
    assert "(over the objective)" in svg
    assert svg.count("<rect") == 3  # two bars and the hatch pattern's tile


def test_charts_without_data_say_so() -> None:
    empty = charts.line_chart(charts.Series([NOW], [None]), title="t", describe="d", objective=None,
                              objective_label="", fmt=words.duration)  # fmt: skip
    assert "no data in this window" in empty
    assert "nothing blocked or warned" in charts.reason_bars([], title="t")


def test_durations_read_like_people_write_them() -> None:
    cases = {None: "—", 40: "40 s", 60: "1 min", 2820: "47 min", 3600: "1 h", 11100: "3 h 5 min",
             86400: "1 day", 180000: "2 days 2 h"}  # fmt: skip
    assert {seconds: words.duration(seconds) for seconds in cases} == cases
    assert words.percent(0.0004) == "0.04%"
    assert words.percent(0.025) == "2.5%"
