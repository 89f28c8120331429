"""Bad values never become a store error: the same answer on SQLite and PostgreSQL, whatever a caller sends.

Record members the store cannot keep make the record INVALID_RECORD (the check still runs and is
kept); request members it cannot keep are refused as InputError before anything is written.
"""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from guard import Action, Guard, InputError, ReasonCode
from tests.conftest import NOW, RecordFactory

_RANDOM = random.Random(11)
LONG_KEY = "".join(_RANDOM.choices(string.ascii_letters + string.digits + "éü東😀", k=3000))

#: (what, record members): each makes the record INVALID_RECORD, with a reason naming the member.
BAD_RECORDS: list[tuple[str, dict[str, Any], str]] = [
    ("a 3,000-character random key", {"key": LONG_KEY}, "`key` is 3,000 characters long"),
    ("a key with a NUL", {"key": "C-\x001"}, "`key` holds a NUL"),
    ("a key with a lone surrogate", {"key": "C-\udc001"}, "`key` holds a lone surrogate"),
    ("an id of 3,000 characters", {"id": LONG_KEY}, "`id` is 3,000 characters long"),
    ("an id with a lone surrogate", {"id": "\ud800"}, "`id` holds a lone surrogate"),
    ("an object with a NUL", {"object": "cust\x00omer"}, "`object` holds a NUL"),
    ("a source of 300 characters", {"source": "s" * 300}, "`source` is 300 characters long"),
]


@pytest.mark.parametrize(("members", "words"), [c[1:] for c in BAD_RECORDS], ids=[c[0] for c in BAD_RECORDS])
def test_a_record_the_store_cannot_keep_is_invalid_and_the_check_is_kept(
    stored_guard: Guard, record: RecordFactory, members: dict[str, Any], words: str
) -> None:
    good = record(key="C-7")
    result = stored_guard.check([record(**members), good], pipeline="rag", now=NOW)

    assert result.decisions.actions[0] is Action.BLOCK
    assert [r.code for r in result.decisions.reasons[0]] == [ReasonCode.INVALID_RECORD]
    assert words in result.decisions.reasons[0][0].message
    assert result.decisions.actions[1] is Action.ALLOW
    assert stored_guard.store is not None
    run = stored_guard.store.get_run(result.run_id)
    assert run is not None
    assert [row["action"] for row in run["decisions"]] == ["block", "allow"]


@pytest.mark.parametrize("offset", ["+16:00", "-23:59", "+15:59", "-00:30"])
def test_a_timestamp_with_any_offset_is_kept_in_utc(stored_guard: Guard, record: RecordFactory, offset: str) -> None:
    """PostgreSQL takes offsets up to 15:59 only: timestamps are normalised to UTC before they are stored."""
    moment = NOW.astimezone().replace(tzinfo=None).isoformat() + offset
    result = stored_guard.check([record(observed_at=moment, updated_at=...)], pipeline="rag", now=NOW)

    assert stored_guard.store is not None
    run = stored_guard.store.get_run(result.run_id)
    assert run is not None
    observed = run["decisions"][0]["observed_at"]
    assert observed is not None
    assert observed.utcoffset().total_seconds() == 0


BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("a pipeline with a NUL", {"pipeline": "rag\x00"}, "it holds a NUL"),
    (
        "a pipeline of 300 characters",
        {"pipeline": "p" * 300},
        "pipeline must be a name of 1 to 200 characters: it is 300 characters long",
    ),
    ("a consumer with a lone surrogate", {"consumer": {"model": "\udc00"}}, "consumer.model holds a lone surrogate"),
    ("a consumer with a long value", {"consumer": {"model": "m", "note": "n" * 2000}}, "consumer.note is 2,000"),
    ("a consumer nested too deeply", {"consumer": {"a": [[[[[[[[["deep"]]]]]]]]]}}, "nests more than 8 levels"),
]


@pytest.mark.parametrize(("members", "words"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_a_request_member_the_store_cannot_keep_is_refused_before_anything_is_written(
    stored_guard: Guard, record: RecordFactory, members: dict[str, Any], words: str
) -> None:
    asked: dict[str, Any] = {"pipeline": "rag", **members}
    with pytest.raises(InputError, match=words.replace("(", r"\(")):
        stored_guard.check([record()], now=NOW, **asked)
    assert stored_guard.store is not None
    assert stored_guard.store.list_runs() == []


@pytest.mark.parametrize("key", [LONG_KEY, "C-\x00", "C-\udc00"], ids=["long", "NUL", "lone surrogate"])
def test_a_change_notification_with_a_key_the_store_cannot_keep_is_refused(stored_guard: Guard, key: str) -> None:
    with pytest.raises(InputError, match="the key of a change to customer"):
        stored_guard.note_change("customer", key, NOW)
