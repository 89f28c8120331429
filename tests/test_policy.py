"""Loading policies: the example ships valid, and every mistake is refused with file, path, line and advice."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard import PolicyError, load_policy, parse_policy, parse_policy_text
from tests.conftest import MINIMAL_POLICY, POLICIES


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_policy_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.objects, f"{path.name} declares no objects"
    for name, spec in policy.objects.items():
        assert spec.owner in policy.sources, name


def test_minimal_policy_reads_as_written() -> None:
    policy = parse_policy(MINIMAL_POLICY)
    customer = policy.objects["customer"]
    assert (policy.name, policy.version) == ("support-bot", 3)
    assert policy.clock_skew == timedelta(minutes=2)
    assert policy.naive_timestamps == "reject"
    assert (customer.owner, customer.replicas) == ("salesforce", ["sap", "warehouse"])
    assert (customer.max_age, customer.warn_age) == (timedelta(hours=1), timedelta(minutes=30))
    assert customer.on_conflict == "prefer_owner"
    assert customer.fields["tier"].in_ == ["gold", "silver", "bronze"]


def test_content_hash_ignores_layout_but_not_meaning() -> None:
    reordered = MINIMAL_POLICY.replace("clock_skew: 2m", "clock_skew: 120   # seconds")
    changed = MINIMAL_POLICY.replace("max_age: 1h", "max_age: 2h")
    base = parse_policy(MINIMAL_POLICY).content_hash()
    assert parse_policy(reordered).content_hash() == base
    assert parse_policy(changed).content_hash() != base


def _refusal(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, origin="policies/broken.yaml")
    return caught.value


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        ("owner: salesforce", "owner: salesforc", "objects.customer.owner", "did you mean 'salesforce'"),
        (
            "replicas: [sap, warehouse]",
            "replicas: [sap, salesforce]",
            "objects.customer.replicas.1",
            "cannot also be a replica",
        ),
        ("replicas: [sap, warehouse]", "replicas: [sap, sap]", "objects.customer.replicas.1", "listed twice"),
        ("max_age: 1h", "max_age: an hour", "objects.customer.max_age", "not a duration"),
        ("max_age: 1h", "max_age: -5m", "objects.customer.max_age", "zero or more"),
        ("max_age: 1h", "max_age: P1M", "objects.customer.max_age", "years or months"),
        ("warn_age: 30m", "warn_age: 2h", "objects.customer", "must be shorter than max_age"),
        ("clock_skew: 2m", "clock_skew: soon", "clock_skew", "not a duration"),
        (
            "{type: float, min: 0}",
            "{type: decimal, min: 0}",
            "objects.customer.fields.credit_limit.type",
            "'decimal' is not allowed",
        ),
        (
            "{type: float, min: 0}",
            "{type: float, minimum: 0}",
            "objects.customer.fields.credit_limit.minimum",
            "unknown check 'minimum'; did you mean 'min'",
        ),
        (
            "{type: float, min: 0}",
            "{type: str, min: 0}",
            "objects.customer.fields.credit_limit",
            "min and max apply to int and float",
        ),
        ("in: [gold, silver, bronze]", "in: [gold, 2]", "objects.customer.fields.tier", "not str"),
        (
            "pattern: '^[^@\\s]+@[^@\\s]+$'",
            "pattern: '([a-z'",
            "objects.customer.fields.email.pattern",
            "not a valid regular expression",
        ),
        ("version: 3", "version: '3'", "version", "whole number"),
        ("version: 3", "version: 3.5", "version", "whole number"),
        ("version: 3", "version: three", "version", "whole number"),
        (
            "warn_age: 30m",
            "warn_age: 30m\n    on_conflict: first",
            "objects.customer.on_conflict",
            "'first' is not allowed",
        ),
        ("clock_skew: 2m", "clock_skew: 2m\nnaive_timestamps: local", "naive_timestamps", "'local' is not allowed"),
        ("clock_skew: 2m", "clock_skew: 2m\nslots: []", "slots", "unknown key 'slots'; did you mean 'slas'"),
        ("policy: support-bot\n", "", "policy", "required but missing"),
    ],
    ids=lambda value: value if isinstance(value, str) and "." in value and " " not in value else None,
)
def test_mistakes_are_located_and_explained(old: str, new: str, path: str, words: str) -> None:
    assert old in MINIMAL_POLICY
    error = _refusal(MINIMAL_POLICY.replace(old, new, 1))
    message = str(error)
    assert "policies/broken.yaml" in message
    assert any(problem.path == path for problem in error.problems), message
    assert words in message


def test_every_problem_is_reported_at_once_with_lines() -> None:
    text = MINIMAL_POLICY.replace("owner: salesforce", "owner: hubspot").replace("max_age: 1h", "max_age: whenever")
    error = _refusal(text)
    paths = {problem.path for problem in error.problems}
    assert "objects.customer.max_age" in paths
    line_of_max_age = next(n for n, line in enumerate(text.splitlines(), 1) if "max_age" in line)
    assert any(p.line == line_of_max_age for p in error.problems if p.path == "objects.customer.max_age")
    assert f"(line {line_of_max_age})" in str(error)


def test_cross_references_are_checked_after_the_shape() -> None:
    text = MINIMAL_POLICY + (
        "slas:\n"
        "  - {source: sapp, object: customer, max_lag: 15m, notify: [pager]}\n"
        "  - {source: sap, object: invoice}\n"
    )
    error = _refusal(text)
    by_path = {problem.path: problem.message for problem in error.problems}
    assert "did you mean 'sap'" in by_path["slas.0.source"]
    assert "not a declared channel" in by_path["slas.0.notify.0"]
    assert "not a declared object" in by_path["slas.1.object"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("policy: [unclosed", "not valid YAML"),
        ("", "the file is empty"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_documents_that_are_not_policies(text: str, words: str) -> None:
    assert words in str(_refusal(text))


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=r"nope\.yaml"):
        load_policy(missing)


def test_yaml_error_carries_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("policy: x\nversion: 1\nsources: {a: {team: [}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(path) in str(caught.value)
    assert caught.value.problems[0].line == 3


@pytest.mark.parametrize("pattern", [r"(?=a)b", r"(?<!x)y", r"(a)\1", r"(?P<x>a)(?P=x)", r"(?>ab)"])
def test_patterns_the_contract_engine_cannot_run_are_refused_at_load(pattern: str) -> None:
    from guard.policy.model import FieldSpec

    with pytest.raises(ValueError, match="not supported by the contract engine"):
        FieldSpec(type="str", pattern=pattern)


def test_a_key_given_twice_is_refused_with_its_line() -> None:
    text = MINIMAL_POLICY.replace("warn_age: 30m", "warn_age: 30m\n    max_age: 2h")
    error = _refusal(text)
    assert [(p.path, "twice" in p.message) for p in error.problems] == [("objects.customer.max_age", True)]
    assert error.problems[0].line == text.splitlines().index("    max_age: 2h") + 1


def test_one_mistake_is_one_problem_even_in_a_union() -> None:
    error = _refusal(MINIMAL_POLICY.replace("min: 0", "min: abc"))
    assert [p.path for p in error.problems] == ["objects.customer.fields.credit_limit.min"]


def test_names_say_which_characters_they_may_use() -> None:
    error = _refusal(MINIMAL_POLICY.replace("  customer:", "  cust omer:"))
    assert "use letters, digits and _ . : - only" in str(error)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
near_policies = st.fixed_dictionaries(
    {},
    optional={
        "policy": json_values | st.just("p"),
        "version": json_values | st.just(1),
        "sources": json_values | st.just({"crm": {"team": "t"}}),
        "objects": json_values | st.just({"customer": {"owner": "crm", "max_age": "1h"}}),
        "slas": json_values,
    },
).flatmap(lambda base: st.dictionaries(st.sampled_from(["int", "str", "a[0]", "", "x.y"]) | st.text(max_size=8),
                                       json_values, max_size=3).map(lambda extra: {**extra, **base}))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(near_policies)
def test_any_json_document_loads_or_is_refused_with_a_policy_error(document: dict[str, object]) -> None:
    """Whatever a client publishes, the loader answers with a Policy or a PolicyError naming a path, never a crash."""
    text = json.dumps(document)
    refused: PolicyError | None = None
    try:
        parse_policy_text(text, "application/json", origin="fuzz")
    except PolicyError as exc:
        refused = exc
    if refused is not None:
        assert refused.problems
        assert all(isinstance(problem.path, str) for problem in refused.problems)
