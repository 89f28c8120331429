"""The field contract: each check on each type, its words, and the pandera schema behind it."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

import guard.checks.contract as contract_module
from guard.checks._regex import python_pattern
from guard.checks.contract import Contract, FieldRule, Violation, build_schema, describe
from guard.errors import PolicyError
from guard.policy.model import FieldSpec

EMAIL = r"^[^@\s]+@[^@\s]+$"


def contract_of(naive_is_utc: bool = False, **spec: Any) -> Contract:
    """A contract with one field, `f`, declared as in a policy file."""
    return Contract("customer", {"f": FieldSpec.model_validate(spec)}, naive_is_utc=naive_is_utc)


def case(name: str, spec: dict[str, Any], value: Any, *checks: str, naive_is_utc: bool = False) -> Any:
    """One row of the table: field `f` declared as `spec` holding `value` fails `checks` (none: passes)."""
    return pytest.param(spec, value, list(checks), naive_is_utc, id=name)


MISSING = object()
CASES = [
    # required
    case("required/missing", {"type": "str", "required": True}, MISSING, "required"),
    case("optional/missing", {"type": "str"}, MISSING),
    case("required/null-allowed", {"type": "str", "required": True, "nullable": True}, None),
    # nullable
    case("nullable/null-refused", {"type": "int"}, None, "nullable"),
    case("nullable/null-allowed", {"type": "int", "nullable": True}, None),
    # type: str
    case("str/text", {"type": "str"}, "ana"),
    case("str/empty-text", {"type": "str"}, ""),
    case("str/number", {"type": "str"}, 5, "type"),
    case("str/lone-surrogate", {"type": "str"}, "\ud800", "type"),
    # type: int
    case("int/whole", {"type": "int"}, 5),
    case("int/int64-max", {"type": "int"}, 2**63 - 1),
    case("int/int64-min", {"type": "int"}, -(2**63)),
    case("int/beyond-64-bits", {"type": "int"}, 2**63, "type"),
    case("int/bool", {"type": "int"}, True, "type"),
    case("int/float", {"type": "int"}, 5.0, "type"),
    case("int/text", {"type": "int"}, "5", "type"),
    # type: float
    case("float/float", {"type": "float"}, 5.5),
    case("float/int", {"type": "float"}, 5),
    case("float/big-int", {"type": "float"}, 2**80),
    case("float/int-beyond-float", {"type": "float"}, 10**400, "type"),
    case("float/nan", {"type": "float"}, math.nan, "type"),
    case("float/inf", {"type": "float"}, math.inf, "type"),
    case("float/bool", {"type": "float"}, False, "type"),
    case("float/text", {"type": "float"}, "1.5", "type"),
    # type: bool
    case("bool/false", {"type": "bool"}, False),
    case("bool/int", {"type": "bool"}, 1, "type"),
    case("bool/text", {"type": "bool"}, "true", "type"),
    # type: datetime
    case("datetime/z", {"type": "datetime"}, "2026-11-22T10:00:00Z"),
    case("datetime/offset", {"type": "datetime"}, "2026-11-22T10:00:00+05:30"),
    case("datetime/naive-refused", {"type": "datetime"}, "2026-11-22T10:00:00", "type"),
    case("datetime/naive-as-utc", {"type": "datetime"}, "2026-11-22T10:00:00", naive_is_utc=True),
    case("datetime/garbage", {"type": "datetime"}, "yesterday", "type"),
    case("datetime/before-year-1-in-utc", {"type": "datetime"}, "0001-01-01T00:00:00+05:00", "type"),
    case("datetime/epoch-number", {"type": "datetime"}, 1_700_000_000, "type"),
    # min and max
    case("min/int-below", {"type": "int", "min": 0}, -1, "min"),
    case("min/int-at", {"type": "int", "min": 0}, 0),
    case("min/int-below-fractional", {"type": "int", "min": 0.5}, 0, "min"),
    case("min/int-above-fractional", {"type": "int", "min": 0.5}, 1),
    case("min/int-beyond-64-bits", {"type": "int", "min": 2**70}, 2**63 - 1, "min"),
    case("max/int-above", {"type": "int", "max": 10}, 11, "max"),
    case("max/int-exact-beyond-float-precision", {"type": "int", "max": 2.0**53}, 2**53 + 1, "max"),
    case("max/int-minus-infinity", {"type": "int", "max": -math.inf}, 0, "max"),
    case("min/float-below", {"type": "float", "min": 0}, -0.5, "min"),
    case("min/float-negative-zero", {"type": "float", "min": 0}, -0.0),
    case("max/float-compared-as-float64", {"type": "float", "max": 2**54 - 1}, 2**54 - 1),
    case("max/float-int-value", {"type": "float", "min": 1, "max": 2}, 3, "max"),
    # in
    case("in/str-member", {"type": "str", "in": ["gold", "silver"]}, "gold"),
    case("in/str-case-matters", {"type": "str", "in": ["gold", "silver"]}, "GOLD", "in"),
    case("in/int-not-member", {"type": "int", "in": [1, 2]}, 3, "in"),
    case("in/float-int-member", {"type": "float", "in": [1, 2.5]}, 1),
    case("in/float-negative-zero", {"type": "float", "in": [0]}, -0.0),
    case("in/float-not-member", {"type": "float", "in": [1, 2.5]}, 2.4, "in"),
    case("in/bool-not-member", {"type": "bool", "in": [True]}, False, "in"),
    # pattern (polars' regex, matched at the start of the value)
    case("pattern/email", {"type": "str", "pattern": EMAIL}, "ana@example.com"),
    case("pattern/dollar-is-end-of-text", {"type": "str", "pattern": EMAIL}, "ana@example.com\n", "pattern"),
    case("pattern/space", {"type": "str", "pattern": EMAIL}, "an a@example.com", "pattern"),
    case("pattern/x1c-is-not-white-space", {"type": "str", "pattern": EMAIL}, "ana\x1c@example.com"),
    case("pattern/ideographic-space", {"type": "str", "pattern": EMAIL}, "ana\u3000@example.com", "pattern"),
    case("pattern/too-long", {"type": "str", "pattern": r"^[A-Z]{3}$"}, "EURO", "pattern"),
    case("pattern/unicode-digits", {"type": "str", "pattern": r"^SKU-\d{4,8}$"}, "SKU-١٢٣٤"),
    case("pattern/anchored-at-start", {"type": "str", "pattern": "ab*c"}, "xabc", "pattern"),
    case("pattern/not-anchored-at-end", {"type": "str", "pattern": "ab*c"}, "abbcx"),
    case("pattern/every-alternative-anchored", {"type": "str", "pattern": "a|bc"}, "0bc", "pattern"),
    case("pattern/combining-mark-is-word", {"type": "str", "pattern": r"\w+"}, "\u0301"),
    case("pattern/superscript-is-not-word", {"type": "str", "pattern": r"\w+"}, "²", "pattern"),
    case("pattern/case-insensitive-unicode", {"type": "str", "pattern": "(?i)straße"}, "STRAßE"),
    case("pattern/no-turkish-dotted-i-folding", {"type": "str", "pattern": "(?i)\u0130"}, "i", "pattern"),
    # min_length and max_length (characters, not bytes)
    case("min_length/empty", {"type": "str", "min_length": 1}, "", "min_length"),
    case("max_length/one-character", {"type": "str", "max_length": 1}, "é"),
    case("max_length/too-long", {"type": "str", "max_length": 2}, "abc", "max_length"),
    # several checks of one field, in check order
    case("checks/in-order", {"type": "str", "pattern": "^x", "min_length": 4, "in": ["xyzzy"]}, "abc",
         "in", "pattern", "min_length"),
    case("checks/max-and-in", {"type": "int", "min": 1, "max": 5, "in": [9]}, 7, "max", "in"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "value", "checks", "naive_is_utc"), CASES)
def test_check_one(spec: dict[str, Any], value: Any, checks: list[str], naive_is_utc: bool) -> None:
    """Each check decides per type as the policy file says, the same in Python and with pandera."""
    contract = contract_of(naive_is_utc=naive_is_utc, **spec)
    fields = {} if value is MISSING else {"f": value}
    reported = None if value is MISSING or checks in (["required"], ["nullable"]) else value
    expected = [Violation("f", check, reported) for check in checks]
    assert expected == contract.check_one(fields)
    assert [expected] == contract.check_many([fields])


def test_violations_come_in_field_order_then_check_order() -> None:
    contract = Contract(
        "customer",
        {
            "email": FieldSpec(type="str", required=True, pattern=EMAIL),
            "credit_limit": FieldSpec(type="float", min=0),
            "tier": FieldSpec.model_validate({"type": "str", "in": ["gold"], "max_length": 3}),
        },
        naive_is_utc=False,
    )
    fields = {"tier": "bronze", "credit_limit": -5}
    expected = [
        Violation("email", "required"),
        Violation("credit_limit", "min", -5),
        Violation("tier", "in", "bronze"),
        Violation("tier", "max_length", "bronze"),
    ]
    assert expected == contract.check_one(fields)
    assert [expected, []] == contract.check_many([fields, {"email": "a@b"}])


def test_records_without_fields_miss_every_required_field() -> None:
    contract = Contract(
        "customer", {"a": FieldSpec(type="str", required=True), "b": FieldSpec(type="int")}, naive_is_utc=False
    )
    assert [Violation("a", "required")] == contract.check_one(None)
    assert [[Violation("a", "required")], []] == contract.check_many([None, {"a": "x"}])


def test_an_empty_contract_checks_nothing() -> None:
    contract = Contract("customer", {}, naive_is_utc=False)
    assert not contract
    assert contract.check_one({"anything": 1}) == []
    assert contract.check_many([{"anything": 1}, None]) == [[], []]


@pytest.mark.parametrize(
    ("violation", "spec", "words"),
    [
        pytest.param(Violation("email", "required"), {"type": "str"}, "email is missing", id="required"),
        pytest.param(
            Violation("credit_limit", "type", "abc"),
            {"type": "float"},
            "credit_limit should be a number, got 'abc'",
            id="type",
        ),
        pytest.param(
            Violation("opened_at", "type", "2026-11-22T10:00:00"),
            {"type": "datetime"},
            "opened_at should be a timestamp with a UTC offset, got '2026-11-22T10:00:00'",
            id="type-datetime",
        ),
        pytest.param(
            Violation("stock", "type", 10**120),
            {"type": "int"},
            "stock is a number of about 121 digits, outside the range of a 64-bit whole number",
            id="type-int-beyond-64-bits",
        ),
        pytest.param(
            Violation("credit_limit", "type", math.nan),
            {"type": "float"},
            "credit_limit is nan, not a finite number",
            id="type-nan",
        ),
        pytest.param(
            Violation("name", "type", "\ud800"),
            {"type": "str"},
            "name is not valid Unicode text (it holds a lone surrogate)",
            id="type-surrogate",
        ),
        pytest.param(Violation("tier", "nullable"), {"type": "str"}, "tier is empty (null)", id="nullable"),
        pytest.param(
            Violation("credit_limit", "min", -5),
            {"type": "float", "min": 0},
            "credit_limit is -5, below the minimum of 0",
            id="min",
        ),
        pytest.param(
            Violation("priority", "max", 7),
            {"type": "int", "max": 4},
            "priority is 7, above the maximum of 4",
            id="max",
        ),
        pytest.param(
            Violation("tier", "in", "tin"),
            {"type": "str", "in": ["gold", "silver", "bronze"]},
            "tier is 'tin', not one of gold, silver, bronze",
            id="in",
        ),
        pytest.param(
            Violation("email", "pattern", "not-an-email"),
            {"type": "str", "pattern": EMAIL},
            "email 'not-an-email' does not have the expected form",
            id="pattern",
        ),
        pytest.param(
            Violation("name", "min_length", ""),
            {"type": "str", "min_length": 1},
            "name is shorter than 1 characters",
            id="min_length",
        ),
        pytest.param(
            Violation("name", "max_length", "x" * 300),
            {"type": "str", "max_length": 200},
            "name is longer than 200 characters",
            id="max_length",
        ),
        pytest.param(
            Violation("email", "pattern", "x" * 100),
            {"type": "str", "pattern": EMAIL},
            f"email '{'x' * 56}... does not have the expected form",
            id="long-value-cut",
        ),
    ],
)
def test_describe(violation: Violation, spec: dict[str, Any], words: str) -> None:
    """Each failed check reads as a sentence an operator understands."""
    assert words == describe(violation, FieldSpec.model_validate(spec))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(-5, -5, id="int"),
        pytest.param(2.5, 2.5, id="float"),
        pytest.param(None, None, id="null"),
        pytest.param(math.nan, "nan", id="nan"),
        pytest.param(-math.inf, "-inf", id="inf"),
        pytest.param(2**64, "18446744073709551616", id="int-beyond-64-bits"),
        pytest.param("\ud800x", "\\ud800x", id="lone-surrogate"),
        pytest.param([1, 2], "[1, 2]", id="list"),
    ],
)
def test_violation_to_dict_is_json_ready(value: Any, shown: Any) -> None:
    """Values JSON (and orjson) cannot carry are shown as text."""
    assert {"field": "f", "check": "type", "value": shown} == Violation("f", "type", value).to_dict()


@pytest.mark.parametrize(
    ("pattern", "form"),
    [
        pytest.param(r"^[A-Z]{3}$", r"^[A-Z]{3}\Z", id="dollar-is-end-of-text"),
        pytest.param(r"[a-z$]+\$", r"[a-z$]+\$", id="dollar-in-class-or-escaped"),
        pytest.param(r"(?m)^a$", r"(?m)^a$", id="multiline-dollar"),
        pytest.param(r"(?m:a$)b$", r"(?m:a$)b\Z", id="scoped-multiline"),
        pytest.param(r"\d+\w", r"\d+\w", id="digits-and-words-agree-on-ascii"),
        pytest.param("[[:alpha:]]", None, id="posix-class"),
        pytest.param("[a-z&&b]", None, id="class-intersection"),
        pytest.param(r"\<a", None, id="rust-word-start"),
        pytest.param("a*+", None, id="possessive"),
        pytest.param("(?x)a b", None, id="verbose"),
        pytest.param("(?i)é", None, id="case-folding-outside-ascii"),
    ],
)
def test_python_pattern(pattern: str, form: str | None) -> None:
    """Python's `re` sees a pattern in a form that decides ASCII text as polars does, or polars decides."""
    assert form == python_pattern(pattern)


def test_white_space_is_rust_white_space() -> None:
    form = python_pattern(r"\s")
    assert form is not None
    assert "\\U0000001c" not in form
    assert "\\U00003000" in form


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        pytest.param("(?=a)", "look-around", id="look-ahead"),
        pytest.param(r"(a)\1", "backreferences are not supported", id="back-reference"),
        pytest.param(r"^SKU-\d+\Z", "unrecognized escape sequence", id="python-end-of-text"),
    ],
)
def test_build_schema_refuses_patterns_polars_cannot_run(pattern: str, problem: str) -> None:
    spec = FieldSpec.model_construct(type="str", pattern=pattern)  # past the model's own refusals
    with pytest.raises(PolicyError) as refused:
        build_schema("product", [FieldRule("code", spec, naive_is_utc=False)])
    assert [p.path for p in refused.value.problems] == ["objects.product.fields.code.pattern"]
    assert problem in str(refused.value)


@pytest.mark.parametrize("pattern", [r"^SKU-\d+\Z", "a{,3}", "(?#a comment)a", r"\0"])
def test_patterns_python_takes_but_polars_cannot_run_do_not_load(pattern: str) -> None:
    """Refused when the policy is compiled, not at the first big batch."""
    with pytest.raises(PolicyError) as refused:
        Contract("product", {"sku": FieldSpec(type="str", pattern=pattern)}, naive_is_utc=False)
    assert [p.path for p in refused.value.problems] == ["objects.product.fields.sku.pattern"]
    assert "the contract engine cannot run this pattern" in str(refused.value)


def test_rust_only_syntax_is_decided_by_polars() -> None:
    """`[[:alpha:]]` is a POSIX class to polars and a nested set to Python: polars decides."""
    spec = FieldSpec(type="str", pattern="[[:alpha:]]+$")
    contract = Contract("customer", {"f": spec}, naive_is_utc=False)
    rows = [{"f": "abc"}, {"f": "ab:c"}, {"f": "[:]"}]
    expected = [[], [Violation("f", "pattern", "ab:c")], [Violation("f", "pattern", "[:]")]]
    assert expected == [contract.check_one(row) for row in rows]
    assert expected == contract.check_many(rows)


def test_nan_bounds_do_not_load() -> None:
    """The policy model refuses them (with file and line); a contract built around it refuses them too."""
    with pytest.raises(ValueError, match="not NaN"):
        FieldSpec(type="float", min=math.nan)
    smuggled = FieldSpec.model_construct(type="float", min=math.nan, max=math.nan)
    with pytest.raises(PolicyError) as refused:
        Contract("order", {"total": smuggled}, naive_is_utc=False)
    assert [p.path for p in refused.value.problems] == [
        "objects.order.fields.total.min",
        "objects.order.fields.total.max",
    ]


def test_schema_is_built_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = contract_module.build_schema

    def counting(object_name: str, rules: Any) -> Any:
        built.append(object_name)
        return real(object_name, rules)

    monkeypatch.setattr(contract_module, "build_schema", counting)
    contract = contract_of(type="int", min=0)
    threads = [threading.Thread(target=lambda: contract.check_many([{"f": -1}])) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first = contract.schema
    assert [[Violation("f", "min", -1)]] == contract.check_many([{"f": -1}])
    assert first is contract.schema
    assert built == ["customer"]


def test_schema_declares_every_check() -> None:
    contract = Contract(
        "customer",
        {
            "email": FieldSpec(type="str", required=True, pattern=EMAIL, min_length=3, max_length=200),
            "credit_limit": FieldSpec(type="float", min=0, max=1e6, nullable=True),
            "tier": FieldSpec.model_validate({"type": "str", "in": ["gold", "silver"]}),
        },
        naive_is_utc=False,
    )
    columns = contract.schema.columns
    assert list(columns) == ["email", "credit_limit", "tier"]
    assert [c.error for c in columns["email"].checks] == ["pattern", "min_length", "max_length"]
    assert [c.error for c in columns["credit_limit"].checks] == ["min", "max"]
    assert columns["credit_limit"].nullable
    assert [c.error for c in columns["tier"].checks] == ["in"]
