"""Conflicts between records about one entity in one check, under each rule of docs/decisions.md."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard import Action, Guard, ReasonCode, parse_policy
from tests.conftest import MINIMAL_POLICY, NOW, ts

RULES = ("prefer_owner", "newest", "block_all")


NO_CONTRACT = MINIMAL_POLICY[: MINIMAL_POLICY.index("    fields:")]


def guard_with(rule: str, policy: str = MINIMAL_POLICY) -> Guard:
    return Guard(parse_policy(policy.replace("warn_age: 30m", f"warn_age: 30m\n    on_conflict: {rule}")))


def copy(rid: str, source: str, minutes_old: int = 10, content: str | None = None, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": rid,
        "object": "customer",
        "key": "C-1",
        "source": source,
        "observed_at": ts(NOW - timedelta(minutes=1)),
        "updated_at": ts(NOW - timedelta(minutes=minutes_old)),
    }
    if fields:
        record["fields"] = {"email": "a@b.c", **fields}
    if content is not None:
        record["content"] = content
    return record


def blocked(rule: str, records: list[dict[str, Any]]) -> list[str]:
    result = guard_with(rule, NO_CONTRACT).check(records, pipeline="t", now=NOW)
    return [d.id for d in result.decisions if ReasonCode.CONFLICT in d.codes]


CASES = [
    # (rule, records, ids blocked for CONFLICT)
    ("prefer_owner", [copy("o", "salesforce", tier="gold"), copy("r", "sap", tier="silver")], ["r"]),
    ("prefer_owner", [copy("r1", "sap", tier="gold"), copy("r2", "warehouse", tier="silver")], ["r1", "r2"]),
    ("prefer_owner", [copy("o", "salesforce", tier="gold"), copy("same", "sap", tier="gold")], []),
    (
        "prefer_owner",
        [copy("o", "salesforce", tier="gold"), copy("ok", "sap", tier="gold"), copy("bad", "warehouse", tier="bronze")],
        ["bad"],
    ),
    ("newest", [copy("old", "salesforce", 30, tier="gold"), copy("new", "sap", 5, tier="silver")], ["old"]),
    ("newest", [copy("a", "salesforce", 5, tier="gold"), copy("b", "sap", 5, tier="silver")], ["a", "b"]),
    ("block_all", [copy("o", "salesforce", tier="gold"), copy("r", "sap", tier="silver")], ["o", "r"]),
    ("block_all", [copy("o", "salesforce", tier="gold"), copy("r", "sap", tier="gold")], []),
    # fields carried by only one of them cannot disagree
    ("block_all", [copy("o", "salesforce", tier="gold"), copy("r", "sap", credit_limit=5.0)], []),
    # content is compared only when neither carries fields
    ("block_all", [copy("o", "salesforce", content="A"), copy("r", "sap", content="B")], ["o", "r"]),
    ("block_all", [copy("o", "salesforce", content="A"), copy("r", "sap", content="A")], []),
    ("block_all", [copy("o", "salesforce", content="A", tier="gold"), copy("r", "sap", content="B", tier="gold")], []),
    # JSON equality: 5 and 5.0 agree, true and 1 do not
    ("block_all", [copy("o", "salesforce", credit_limit=5), copy("r", "sap", credit_limit=5.0)], []),
    ("block_all", [copy("o", "salesforce", vip=True), copy("r", "sap", vip=1)], ["o", "r"]),
    # equal as dicts, with the fields in another order: still true against 1
    ("block_all", [copy("o", "salesforce", a=1, b=True), copy("r", "sap", b=1, a=True)], ["o", "r"]),
]


@pytest.mark.parametrize(("rule", "records", "expected"), CASES)
def test_conflict_rules(rule: str, records: list[dict[str, Any]], expected: list[str]) -> None:
    assert blocked(rule, records) == expected


def test_only_records_that_passed_every_other_check_take_part() -> None:
    stale_owner = copy("o", "salesforce", tier="gold") | {"observed_at": ts(NOW - timedelta(hours=2))}
    replica = copy("r", "sap", tier="silver")
    result = guard_with("prefer_owner").check([stale_owner, replica], pipeline="t", now=NOW)
    assert [d.codes for d in result.decisions] == [(ReasonCode.STALE,), ()]


def test_aging_records_still_take_part() -> None:
    aging_owner = copy("o", "salesforce", tier="gold") | {"observed_at": ts(NOW - timedelta(minutes=45))}
    result = guard_with("prefer_owner").check([aging_owner, copy("r", "sap", tier="silver")], pipeline="t", now=NOW)
    assert [d.action for d in result.decisions] == [Action.WARN, Action.BLOCK]


def test_message_names_the_other_copy_and_the_rule() -> None:
    records = [copy("o", "salesforce", credit_limit=5000), copy("r", "sap", credit_limit=7000)]
    decision = guard_with("prefer_owner").check(records, pipeline="t", now=NOW).decisions[1]
    assert decision.reasons[0].message == (
        "customer C-1 from sap disagrees with salesforce (o) on credit_limit (7000 vs 5000); "
        "the policy keeps the copy from the system of record (o)"
    )
    assert decision.reasons[0].detail["kept"] == ["o"]


def test_large_groups_of_identical_copies_do_not_conflict() -> None:
    records = [copy(f"r{i}", "sap", tier="gold") for i in range(200)] + [copy("x", "warehouse", tier="bronze")]
    assert blocked("prefer_owner", records) == [f"r{i}" for i in range(200)] + ["x"]
    records[-1] = copy("x", "salesforce", tier="bronze")
    assert blocked("prefer_owner", records) == [f"r{i}" for i in range(200)]


values = st.sampled_from(["gold", "silver", None])
entity_copies = st.lists(
    st.tuples(
        st.sampled_from(["salesforce", "sap", "warehouse"]),
        st.integers(min_value=1, max_value=4),
        values,
        values,
    ),
    min_size=1,
    max_size=6,
)


def _records(spec: list[tuple[str, int, str | None, str | None]]) -> list[dict[str, Any]]:
    out = []
    for n, (source, age, tier, name) in enumerate(spec):
        fields = {k: v for k, v in (("tier", tier), ("name", name)) if v is not None}
        out.append(copy(f"d{n}", source, age * 5, **fields))
    return out


@settings(max_examples=150, deadline=None)
@given(rule=st.sampled_from(RULES), spec=entity_copies, order=st.randoms(use_true_random=False))
def test_invariants(rule: str, spec: list[tuple[str, int, str | None, str | None]], order: Any) -> None:
    """Whatever the copies: no two records that reach the model disagree; input order changes nothing."""
    records = _records(spec)
    guard = guard_with(rule)
    result = guard.check(records, pipeline="t", now=NOW)
    allowed = [r for r in records if r["id"] not in {d.id for d in result.blocked}]
    for i, a in enumerate(allowed):
        for b in allowed[i + 1 :]:
            shared = set(a["fields"]) & set(b["fields"])
            assert all(a["fields"][f] == b["fields"][f] for f in shared), (a, b)
    shuffled = records[:]
    order.shuffle(shuffled)
    again = guard_with(rule).check(shuffled, pipeline="t", now=NOW)
    assert {d.id: d.codes for d in again.decisions} == {d.id: d.codes for d in result.decisions}
    if rule == "block_all":
        conflicted = {d.id for d in result.decisions if ReasonCode.CONFLICT in d.codes}
        assert not conflicted or len(conflicted) >= 2
