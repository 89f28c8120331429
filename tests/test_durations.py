"""Durations as policies write them and as messages say them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard import format_duration, humanize_seconds, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("2d", 172800),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("PT15M", 900),
        ("pt1h30m", 5400),
        ("P1D", 86400),
        ("3600", 3600),
        ("0.5", 0.5),
        (45, 45),
        (1.5, 1.5),
        ("0s", 0),
    ],
)
def test_accepted_forms(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("soon", "not a duration"),
        ("-5m", "zero or more"),
        (-1, "zero or more"),
        ("P1M", "years or months"),
        ("P1Y", "years or months"),
        ("PXYZ", "not an ISO 8601 duration"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([1], "expected a duration"),
        (float("nan"), "zero or more"),
    ],
)
def test_refused_forms_say_why(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_duration(value)


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=999_999))
def test_exact_form_round_trips(seconds: int, micros: int) -> None:
    delta = timedelta(seconds=seconds, microseconds=micros)
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=2), "2d"),
        (timedelta(0), "0s"),
        (timedelta(seconds=0.25), "0.25s"),
    ],
)
def test_exact_form(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (11100, "3h 5m"),
        (3600, "1h"),
        (3612, "1h"),
        (90, "1m 30s"),
        (45, "45s"),
        (-3, "0s"),
        (2 * 86400 + 240, "2d"),
        (86400 + 3 * 3600 + 59, "1d 3h"),
    ],
)
def test_messages_round_to_two_units(seconds: float, text: str) -> None:
    assert humanize_seconds(seconds) == text


@given(st.floats(min_value=0, max_value=10**8, allow_nan=False))
def test_humanized_never_overstates(seconds: float) -> None:
    """The words never claim more time than passed, and lose less than the smaller unit shown."""
    words = humanize_seconds(seconds)
    shown = parse_duration(words.replace(" ", "")).total_seconds()
    assert shown <= seconds
    unit = {"d": 86400, "h": 3600, "m": 60, "s": 1}[words.split()[-1][-1]]
    assert seconds - shown < max(unit, 1) * 60 + 1
