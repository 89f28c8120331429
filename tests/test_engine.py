"""Properties of the engine as a whole: two passes agree, age is monotone, one bad record harms only itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import guard as guard_package
from guard import Action, Guard, Policy, ReasonCode, with_signature
from guard.checks.compiled import compile_policy
from guard.engine import finish, schema_reason, screen
from tests.conftest import NOW, STRIPE_KEY

SEVERITY = {Action.ALLOW: 0, Action.WARN: 1, Action.BLOCK: 2}


def stamp(minutes: int, style: str) -> object:
    moment = NOW - timedelta(minutes=minutes)
    micro = timedelta(microseconds=1)
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - minutes * micro
    return {
        "z": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "offset": moment.astimezone(timezone(timedelta(hours=2))).isoformat(),
        "naive": moment.replace(tzinfo=None).isoformat(),
        "garbage": "last tuesday",
        "number": 1_700_000_000,
        # A microsecond either side of a limit (clock skew, warn_age, max_age fall on whole minutes).
        "just_older": (moment - micro).isoformat(),
        "just_newer": (moment + micro).isoformat(),
        # Where epoch seconds as floats no longer tell microseconds apart, and where UTC runs out of years.
        "far": far.isoformat(),
        "year_one": "0001-01-01T00:00:00+01:00",
    }[style]


styles = st.sampled_from(
    ["z", "z", "z", "offset", "naive", "garbage", "number", "just_older", "just_newer", "far", "year_one"]
)
minutes = st.one_of(st.integers(min_value=-4, max_value=40), st.integers(min_value=-10, max_value=3000))
field_values = st.one_of(
    st.sampled_from(["a@b.c", "nope", "gold", "tin", "EUR", "eur", "SKU-1234", "open", "2026-11-22T10:00:00Z"]),
    st.integers(min_value=-5, max_value=10),
    st.floats(allow_nan=False, min_value=-10, max_value=1e6),
    st.booleans(),
    st.none(),
)
field_names = st.sampled_from(
    [
        "email",
        "name",
        "credit_limit",
        "tier",
        "status",
        "total",
        "currency",
        "paid",
        "amount_due",
        "sku",
        "stock",
        "priority",
        "opened_at",
    ]
)


@st.composite
def records(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([None, "text", 3, ["x"]]))
    record: dict[str, Any] = {
        "id": draw(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])),
        "object": draw(st.sampled_from(["customer", "order", "invoice", "support_case", "product", "lead"])),
        "key": draw(st.sampled_from(["K-1", "K-2", 7])),
        "source": draw(st.sampled_from(["salesforce", "sap", "stripe", "warehouse", "hubspot"])),
    }
    for member in ("observed_at", "updated_at"):
        if draw(st.booleans()):
            record[member] = stamp(draw(minutes), draw(styles))
    if draw(st.integers(0, 4)):
        record["fields"] = draw(st.dictionaries(field_names, field_values, max_size=5))
    if draw(st.booleans()):
        record["content"] = draw(st.sampled_from(["A", "B"]))
    if draw(st.integers(0, 3)) == 0:
        hops = draw(
            st.lists(
                st.tuples(st.sampled_from(["salesforce", "sap", "warehouse", "stripe"]), minutes, styles), max_size=3
            )
        )
        record["lineage"] = [{"system": s, "at": stamp(m, style)} for s, m, style in hops]
    for member in ("id", "object", "source"):
        if draw(st.integers(0, 25)) == 0:
            del record[member]
    signing = draw(st.sampled_from(["sign", "sign", "none", "wrong"]))
    if signing == "sign":
        record = with_signature(record, STRIPE_KEY)
    elif signing == "wrong":
        record = with_signature(record, "not-the-key")
    if draw(st.integers(0, 5)) == 0:  # one member made odd: what each loop must hand to the check modules
        odd = draw(st.sampled_from([*MEMBERS, "signature"]))
        record[odd] = draw(st.sampled_from(ODD_VALUES))
    return record


MEMBERS = ("id", "object", "key", "source", "observed_at", "updated_at", "lineage", "fields", "content")
ODD_VALUES: list[Any] = [
    "", None, 5, 2.5, True, [], {}, "x", ["x"], [{"system": "", "at": "2026-11-22T11:00:00Z"}],
    [{"system": "salesforce"}], [{"system": "salesforce", "at": 5}], {"email": "a@b.c"},
]  # fmt: skip


def decisions(
    policy: Policy, batch: list[Any], *, fast: bool
) -> list[tuple[str, Action, tuple[Any, ...], float | None, Any, Any]]:
    compiled = compile_policy(policy, {"STRIPE_SIGNING_KEY": STRIPE_KEY})
    table = finish(screen(batch, compiled, NOW, fast=fast), {})
    return [
        (d.id, d.action, tuple((r.code, r.message, r.detail) for r in d.reasons), d.age_s, d.observed_at, d.updated_at)
        for d in table
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(records(), max_size=12))
def test_screen_decides_exactly_as_the_check_modules(example_policy: Policy, batch: list[Any]) -> None:
    """The fast screen only ever clears records the check modules would pass: same decisions, same words."""
    full = decisions(example_policy, batch, fast=False)
    assert decisions(example_policy, batch, fast=True) == full


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=records(), older=st.integers(min_value=0, max_value=5000), newer=st.integers(min_value=0, max_value=5000))
def test_an_older_copy_never_gets_a_better_action(example_policy: Policy, record: Any, older: int, newer: int) -> None:
    if not isinstance(record, dict):
        return
    older, newer = max(older, newer), min(older, newer)
    guard = Guard(example_policy, environ={"STRIPE_SIGNING_KEY": STRIPE_KEY})

    def action(age: int) -> Action:
        copy = dict(record, observed_at=(NOW - timedelta(minutes=age)).isoformat())
        copy.pop("signature", None)
        copy = with_signature(copy, STRIPE_KEY)
        return guard.check([copy], pipeline="t", now=NOW).decisions[0].action

    assert SEVERITY[action(older)] >= SEVERITY[action(newer)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.lists(records(), max_size=8),
    junk=st.sampled_from([None, "x", 1, [], {"id": "zz"}, {"object": "customer"}]),
)
def test_a_malformed_record_changes_nothing_for_the_others(example_policy: Policy, batch: list[Any], junk: Any) -> None:
    guard = Guard(example_policy, environ={"STRIPE_SIGNING_KEY": STRIPE_KEY})
    alone = guard.check(batch, pipeline="t", now=NOW)
    mixed = guard.check([*batch, junk], pipeline="t", now=NOW)
    assert [(d.id, d.codes) for d in mixed.decisions][: len(batch)] == [(d.id, d.codes) for d in alone.decisions]
    assert mixed.decisions[-1].action is Action.BLOCK


def test_public_names_are_exported_and_sorted() -> None:
    """`guard` is the one import surface: its names are the documented ones, and each resolves."""
    exported = guard_package.__all__
    assert exported == sorted(exported)
    assert {"Guard", "load_policy", "parse_policy", "Record", "CheckResult", "Decision", "Reason", "ReasonCode"} <= set(
        exported
    )
    assert {"GuardError", "PolicyError", "InputError", "StoreError", "ConfigurationError"} <= set(exported)
    for name in exported:
        getattr(guard_package, name)  # raises AttributeError for a name that is not there
    public = {n for n in dir(guard_package) if not n.startswith("_") and n[0].isupper()}
    assert public - set(exported) - {"TYPE_CHECKING"} == set(), "a public class is not in __all__"


def test_importing_the_library_keeps_heavy_packages_away() -> None:
    import subprocess
    import sys

    code = (
        "import sys, guard; from guard import Guard, load_policy; "
        "print(sorted(m for m in ('pandas', 'polars', 'pandera', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_records_in_order_take_the_fast_path(example_policy: Policy, record: Any) -> None:
    """The screen clears plain records without building envelopes (what makes big checks fast)."""
    compiled = compile_policy(example_policy, {"STRIPE_SIGNING_KEY": STRIPE_KEY})
    clean = [record(id=f"r{n}", key=f"C-{n}") for n in range(50)]
    batch = screen(clean, compiled, NOW)
    assert batch.envelopes == {}
    assert all(found is None for found in batch.reasons)


def test_stale_and_aging_records_are_decided_in_the_first_pass(example_policy: Policy, record: Any) -> None:
    """A copy whose only fault is its age gets its reason without an envelope being built."""
    compiled = compile_policy(example_policy, {"STRIPE_SIGNING_KEY": STRIPE_KEY})
    fields = {"email": "ana@example.com", "name": "Ana", "tier": "gold"}
    old = [
        record(id="stale", observed_at=(NOW - timedelta(hours=3)).isoformat(), fields=fields),
        record(id="aging", observed_at=(NOW - timedelta(minutes=45)).isoformat(), fields=fields),
    ]
    batch = screen(old, compiled, NOW)
    assert batch.envelopes == {}
    fast = [(d.id, d.codes, d.reasons) for d in finish(batch, {})]
    slow = [(d.id, d.codes, d.reasons) for d in finish(screen(old, compiled, NOW, fast=False), {})]
    assert fast == slow
    assert [codes for _, codes, _ in fast] == [(ReasonCode.STALE,), (ReasonCode.AGING,)]


def test_a_watermark_of_an_object_the_new_policy_drops_is_ignored(
    example_policy: Policy, minimal_policy: Policy, record: Any
) -> None:
    """Watermarks outlive a policy switch; one for an object the policy no longer covers supersedes nothing."""
    guard = Guard(example_policy, environ={"STRIPE_SIGNING_KEY": STRIPE_KEY})
    guard.note_change("order", "O-1", NOW - timedelta(minutes=1))
    guard.use_policy(minimal_policy)
    copy = record(object="order", key="O-1", source="sap", updated_at=(NOW - timedelta(minutes=30)).isoformat())
    decision = guard.check([copy], pipeline="t", now=NOW).decisions[0]
    assert decision.codes == (ReasonCode.UNKNOWN_OBJECT,)


def test_copies_that_break_the_contract_alike_are_worded_each_as_their_own(example_policy: Policy, record: Any) -> None:
    """Words are reused between copies with the same violations; never across values that only compare equal."""
    compiled = compile_policy(example_policy, {"STRIPE_SIGNING_KEY": STRIPE_KEY})
    broken = {"email": "nope", "name": "N", "credit_limit": -5.0, "tier": "tin"}
    batch = [
        record(id="a", key="K breaks the rule", fields=dict(broken)),
        record(id="b", key="K-2", fields=dict(broken)),
        record(id="c", key="K-3", fields={**broken, "credit_limit": -0.0, "tier": "gold"}),
        record(id="d", key="K-4", fields={**broken, "credit_limit": 0.0, "tier": "gold"}),
        record(id="e", key="K-5", fields={**broken, "credit_limit": -1, "tier": "gold"}),
        record(id="f", key="K-6", fields={**broken, "credit_limit": True, "tier": "gold"}),
    ]
    table = finish(screen(batch, compiled, NOW), {})
    specs = example_policy.objects["customer"].fields
    for position, decision in enumerate(table):
        violations = compiled.objects["customer"].contract.check_one(batch[position]["fields"])
        label = f"customer {batch[position]['key']} from salesforce"
        expected = schema_reason(label, "customer", violations, specs) if violations else None
        schema = [r for r in decision.reasons if r.code is ReasonCode.SCHEMA_VIOLATION]
        assert schema == ([expected] if expected else [])
    assert table[0].reasons[0].detail is not table[1].reasons[0].detail
