"""Run ids: version-7 UUIDs that grow with the millisecond they were made in."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from guard import Guard
from guard._ids import new_run_id

_MS = 1_000_000  # nanoseconds
moments = st.integers(min_value=0, max_value=(1 << 48) - 1).map(lambda ms: ms * _MS)


@given(moments)
def test_a_run_id_is_a_version_7_uuid_of_its_millisecond(at_ns: int) -> None:
    made = uuid.UUID(new_run_id(at_ns))
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert made.int >> 80 == at_ns // _MS


@given(moments, st.integers(min_value=1, max_value=10**9))
def test_a_later_millisecond_sorts_later_as_text(at_ns: int, later_ms: int) -> None:
    later = min(at_ns + later_ms * _MS, ((1 << 48) - 1) * _MS)
    if later // _MS > at_ns // _MS:
        assert new_run_id(at_ns) < new_run_id(later)


def test_run_ids_of_one_millisecond_differ() -> None:
    assert len({new_run_id(1_700_000_000_000 * _MS) for _ in range(10_000)}) == 10_000


def test_a_checks_run_id_is_made_now(guard: Guard) -> None:
    before = uuid.UUID(new_run_id()).int >> 80
    result = guard.check([], pipeline="p")
    made = uuid.UUID(result.run_id)
    assert made.version == 7
    assert before <= made.int >> 80 <= (uuid.UUID(new_run_id()).int >> 80)
