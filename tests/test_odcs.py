"""ODCS v3 contracts in: fields, teams and latency become policy objects; what cannot be translated is said."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from guard import InputError, Record
from guard.guard import Guard
from guard.policy import policy_from_document
from guard.policy.odcs import ContractTranslation, anchored, merge_into, sla_duration, translate_contract
from tests.conftest import EXAMPLE_POLICY, NOW, ts

FIXTURES = Path(__file__).parent / "fixtures" / "odcs"
CONTRACTS = sorted(FIXTURES.glob("*.odcs.yaml"))


def contract(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    return loaded


def translated(name: str, **options: Any) -> ContractTranslation:
    return translate_contract(contract(name), origin=name, **options)


def notes_of(translation: ContractTranslation) -> dict[str, str]:
    return {note.path: note.reason for note in translation.untranslated}


@pytest.mark.parametrize("path", CONTRACTS, ids=lambda path: path.name)
def test_the_fixtures_are_contracts_the_standard_accepts(path: Path) -> None:
    schema = json.loads(files("open_data_contract_standard").joinpath("schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)

    assert [error.message for error in validator.iter_errors(yaml.safe_load(path.read_text()))] == []


@pytest.mark.parametrize("path", CONTRACTS, ids=lambda path: path.name)
def test_every_translation_loads_as_a_policy(path: Path) -> None:
    translation = translate_contract(yaml.safe_load(path.read_text()), default_max_age=timedelta(hours=1))

    policy = policy_from_document({"policy": "imported", "version": 1, **translation.document()})

    assert set(policy.objects) == set(translation.objects)


def test_enums_required_and_the_team_object() -> None:
    translation = translated("orders-enum.odcs.yaml")

    assert translation.document() == {
        "sources": {"sap": {"team": "finance-systems"}},
        "objects": {
            "order": {
                "owner": "sap",
                "max_age": "2h",
                "fields": {
                    "order_id": {"type": "str", "required": True},
                    "status": {
                        "type": "str",
                        "required": True,
                        "in": ["pending", "processing", "shipped", "cancelled"],
                    },
                    "priority": {"type": "int", "nullable": True, "in": [1, 2, 3]},
                    "country_code": {"type": "str", "required": True, "in": ["US", "FR", "CA", "MX"]},
                },
            }
        },
    }
    assert notes_of(translation) == {
        "slaProperties[0].element (orders.status)": (
            "Freshguard measures a copy's age from its observed_at/updated_at, not from a field"
        ),
        "slaProperties[1] (availability 99.9 percent)": "not a check Freshguard makes",
        "schema[0].properties[0] (order_id).primaryKey": (
            "the record envelope's `key` identifies the entity; not a field check"
        ),
    }


def test_every_logical_type_and_its_options() -> None:
    translation = translated("all-data-types.odcs.yaml")
    fields = translation.objects["transactions_tbl"]["fields"]

    assert fields == {
        "account_id": {
            "type": "str", "nullable": True, "min_length": 11, "max_length": 11, "pattern": "(?s).*?(?:ACC[0-9]{8})"
        },
        "txn_ref_date": {"type": "str", "nullable": True, "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "txn_timestamp": {"type": "datetime", "nullable": True},
        "amount": {"type": "float", "nullable": True, "min": 0},
        "age": {"type": "int", "nullable": True, "min": 18, "max": 99},
        "is_open": {"type": "bool", "nullable": True},
    }  # fmt: skip
    assert translation.objects["transactions_tbl"]["max_age"] == "1h30m"
    notes = notes_of(translation)
    assert (
        notes["schema[0].properties[6] (latest_txns)"]
        == "logicalType array has no Freshguard field type (scalars only)"
    )
    assert "schema[0].properties[7] (customer_details)" in notes
    assert "schema[0].properties[1] (txn_ref_date).logicalTypeOptions.exclusiveMinimum" in notes
    assert notes["team"] == "names neither a team nor a current member with an owner role; no team set"


def test_the_full_example_owner_member_latency_in_days_and_every_other_sla_noted() -> None:
    translation = translated("payments.odcs.yaml")
    notes = notes_of(translation)

    assert translation.sources == {"my-postgres": {"team": "daustin"}}
    assert {name: spec["max_age"] for name, spec in translation.objects.items()} == {"tbl": "4d", "receivers": "4d"}
    assert translation.objects["tbl"]["fields"]["rcvr_cntry_code"] == {"type": "str"}  # nullValues mustBe 0
    assert translation.objects["receivers"]["fields"]["id"] == {"type": "str", "required": True}
    for sla in ("generalAvailability", "endOfSupport", "endOfLife", "retention 3 y", "timeOfAvailability"):
        assert any(path.startswith("slaProperties[") and sla in path for path in notes), sla
    assert notes["slaProperties[5] (frequency 1 d)"].endswith("add an SLA with max_lag under `slas`")
    assert notes["schema[0].quality[0]"].startswith("a quality rule over the whole dataset")
    assert "schema[1].properties[0] (id).unique" in notes
    assert notes["slaProperties[0].element (tab1.txn_ref_dt)"]


def test_quality_rules_valid_values_and_null_values_are_translated_thresholds_are_not() -> None:
    translation = translated("air-quality.odcs.yaml", source="city-data")
    fields = translation.objects["Air_Quality"]["fields"]
    notes = notes_of(translation)

    assert fields["measure"] == {"type": "str", "required": True, "in": ["good", "moderate", "unhealthy"]}
    assert fields["reading"] == {"type": "float"}
    assert notes["schema[0].properties[0] (air_quality_status).quality[0]"] == (
        "invalidValues mustBeLessOrEqualTo 5: not a record check"
    )
    assert "max_age" not in translation.objects["Air_Quality"]
    assert notes["schema[0] (Air_Quality)"].startswith("the contract states no latency SLA for it")
    assert notes["slaProperties[0] (latency)"] == (
        "the unit 'y' has no fixed length; write the latency in days, hours or minutes; max_age not set from it"
    )
    assert "servers" not in notes  # the source was named, so the servers were not consulted


def test_a_contract_with_several_servers_says_which_it_took() -> None:
    assert notes_of(translated("air-quality.odcs.yaml"))["servers"] == (
        "2 servers; city-data is taken as the source (not city-data-replica); --source chooses"
    )


def test_a_pattern_the_contract_engine_cannot_run_is_dropped_with_a_note() -> None:
    document = contract("orders-enum.odcs.yaml")
    document["schema"][0]["properties"][0]["logicalTypeOptions"] = {"pattern": "^(?=ORD)[A-Z0-9-]+$"}

    translation = translate_contract(document)

    assert translation.objects["order"]["fields"]["order_id"] == {"type": "str", "required": True}
    assert any("pattern" in note.path and "look-arounds" in note.reason for note in translation.untranslated)


def test_a_translated_contract_checks_records() -> None:
    translation = translated("orders-enum.odcs.yaml")
    policy = policy_from_document({"policy": "orders", "version": 1, **translation.document()})
    guard = Guard(policy)
    base = {"object": "order", "source": "sap", "observed_at": ts(NOW - timedelta(minutes=5))}
    good = Record(id="a", key="O-1", fields={"order_id": "O-1", "status": "shipped", "country_code": "FR"}, **base)
    bad = Record(id="b", key="O-2", fields={"order_id": "O-2", "status": "lost", "country_code": "FR"}, **base)

    result = guard.check([good, bad], pipeline="p", now=NOW)

    assert [(d.id, d.action.value, [c.value for c in d.codes]) for d in result.decisions] == [
        ("a", "allow", []),
        ("b", "block", ["SCHEMA_VIOLATION"]),
    ]


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (4, "d", timedelta(days=4)),
        (4, "days", timedelta(days=4)),
        (2, "Hours", timedelta(hours=2)),
        (90, "min", timedelta(minutes=90)),
        (1.5, "h", timedelta(minutes=90)),
        ("30", "m", timedelta(minutes=30)),
        (1, "w", timedelta(weeks=1)),
        (500, "ms", timedelta(milliseconds=500)),
        ("PT15M", None, timedelta(minutes=15)),
        ("1h30m", None, timedelta(minutes=90)),
    ],
)
def test_sla_units(value: object, unit: str | None, expected: timedelta) -> None:
    assert sla_duration(value, unit) == expected


@pytest.mark.parametrize(
    ("value", "unit", "message"),
    [
        (3, "y", "no fixed length"),
        (1, "month", "no fixed length"),
        (4, None, "has no unit"),
        (4, "fortnights", "not one of d, h, m, s"),
        (0, "d", "not a positive number"),
        (-1, "h", "not a positive number"),
        (True, "d", "not a number"),
        ("soon", "d", "not a number"),
        ("soon", None, "not a duration"),
        ("4", None, "the value '4' has no unit"),  # a number as text is still a number: no unit, no seconds
        (" 2.5 ", None, "has no unit"),
        ("1e3", None, "has no unit"),
        (1e9, "d", "longer than any duration can be"),
        pytest.param(10**400, "days", "longer than any duration can be", id="an-int-beyond-any-float"),
        ("1e9", "d", "longer than any duration can be"),
        ("99999999999999999s", None, "not a duration"),
    ],
)
def test_sla_values_that_are_no_duration(value: object, unit: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sla_duration(value, unit)


UNITS = {"s": 1, "seconds": 1, "m": 60, "minutes": 60, "h": 3600, "hours": 3600, "d": 86400, "days": 86400}


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(sorted(UNITS)))
def test_a_latency_in_any_unit_is_the_same_max_age_in_seconds(amount: int, unit: str) -> None:
    document = contract("orders-enum.odcs.yaml")
    document["slaProperties"] = [{"property": "latency", "value": amount, "unit": unit}]
    in_seconds = {**document, "slaProperties": [{"property": "latency", "value": amount * UNITS[unit], "unit": "s"}]}

    ours = translate_contract(document).objects["order"]["max_age"]

    assert ours == translate_contract(in_seconds).objects["order"]["max_age"]
    assert policy_from_document({"policy": "p", "version": 1, **translate_contract(document).document()}).objects[
        "order"
    ].max_age == timedelta(seconds=amount * UNITS[unit])


@pytest.mark.parametrize(
    ("value", "unit", "reason"),
    [
        (1e9, "d", "the value 1000000000.0 d is longer than any duration can be (at most 999,999,999 days)"),
        ("4", None, "the value '4' has no unit (d, h, m, s ...)"),
    ],
)
def test_a_latency_that_is_no_duration_is_noted_with_its_path(value: object, unit: str | None, reason: str) -> None:
    document = contract("orders-enum.odcs.yaml")
    document["slaProperties"] = [{"property": "latency", "value": value, **({"unit": unit} if unit else {})}]

    translation = translate_contract(document)

    assert "max_age" not in translation.objects["order"]
    assert notes_of(translation)["slaProperties[0] (latency)"] == f"{reason}; max_age not set from it"


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value


@pytest.mark.parametrize(
    ("path", "value", "note", "reason"),
    [
        ("schema.0.properties", {"name": "order_id", "logicalType": "string"}, "schema[0].properties",
         "must be a list of properties, got a mapping; not translated"),
        ("schema.0.properties.3.logicalTypeOptions", [2, 3],
         "schema[0].properties[3] (country_code).logicalTypeOptions",
         "must be a mapping (minimum, maximum, minLength, maxLength, pattern ...), got a list; no option translated"),
        ("schema.0.properties.3.enum", "US", "schema[0].properties[3] (country_code).enum",
         "must be a list of values, got text; not translated"),
        ("schema.0.properties.3.quality", {"metric": "nullValues", "mustBe": 0},
         "schema[0].properties[3] (country_code).quality",
         "must be a list of quality rules, got a mapping; not translated"),
        ("schema.0.quality", {"metric": "rowCount", "mustBeGreaterThan": 0}, "schema[0].quality",
         "must be a list of quality rules, got a mapping; not translated"),
        ("slaProperties", {"property": "latency", "value": 2, "unit": "h"}, "slaProperties",
         "must be a list of SLA properties, got a mapping; not translated"),
        ("slaProperties.0", "latency 2h", "slaProperties[0]", "an SLA property must be a mapping, got text; not read"),
        ("team", "finance", "team", "must be a mapping (name, members) or a list, got text"),
        ("schema.0.properties.2.logicalTypeOptions", {"minimum": "1e400"},  # YAML's reading of an unquoted 1e400
         "schema[0].properties[2] (priority).logicalTypeOptions.minimum",
         "must be a finite number, got text '1e400'; not translated"),
        ("schema.0.properties.0.logicalTypeOptions", {"pattern": 5},
         "schema[0].properties[0] (order_id).logicalTypeOptions.pattern",
         "must be text (a regular expression), got a number 5; not translated"),
    ],
)  # fmt: skip
def test_a_member_of_the_wrong_type_is_said_with_its_path(path: str, value: Any, note: str, reason: str) -> None:
    document = contract("orders-enum.odcs.yaml")
    _set(document, path, value)

    notes = notes_of(translate_contract(document))

    assert notes[note] == reason
    assert not any("without a name" in reason for reason in notes.values())


@pytest.mark.parametrize(("servers", "words"), [({"server": "sap"}, "a mapping"), ("sap", "text")])
def test_servers_of_the_wrong_type_are_refused_as_such(servers: object, words: str) -> None:
    document = {**contract("orders-enum.odcs.yaml"), "servers": servers}

    with pytest.raises(InputError, match=f"`servers` must be a list of servers \\(- server: NAME\\), got {words}"):
        translate_contract(document, origin="c.yaml")
    assert translate_contract(document, source="sap").source == "sap"  # --source needs no servers


def test_two_latencies_for_one_object_keep_the_stricter() -> None:
    document = contract("orders-enum.odcs.yaml")
    document["slaProperties"] = [
        {"property": "latency", "value": 2, "unit": "h"},
        {"property": "freshness", "value": 30, "unit": "m"},
    ]

    translation = translate_contract(document)

    assert translation.objects["order"]["max_age"] == "30m"
    assert any("kept the stricter 30m" in note.reason for note in translation.untranslated)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (None, "the file is empty"),
        ([1, 2], "the file is a list"),
        ({"kind": "DataProduct", "apiVersion": "v3.0.0"}, "kind is 'DataProduct', not 'DataContract'"),
        ({"kind": "DataContract", "apiVersion": "v2.2.2"}, "apiVersion is v2.2.2; this command reads ODCS v3"),
        ({"kind": "DataContract", "apiVersion": "v3.0.0", "schema": []}, "name it with --source NAME"),
        ({"kind": "DataContract", "apiVersion": "v3.0.0", "servers": [{"server": "a b"}]}, "cannot name a source"),
    ],
)
def test_what_is_not_a_contract_is_refused_naming_the_file(document: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as raised:
        translate_contract(document, origin="c.yaml")

    assert str(raised.value).startswith("contract c.yaml: ")


def test_merging_keeps_what_the_contract_cannot_say() -> None:
    policy = yaml.safe_load(EXAMPLE_POLICY.read_text(encoding="utf-8"))

    merged, said = merge_into(policy, translated("orders-enum.odcs.yaml"))

    order = merged["objects"]["order"]
    assert (order["owner"], order["replicas"], order["warn_age"], order["max_age"]) == (
        "sap",
        ["warehouse"],
        "1h",
        "2h",
    )
    assert set(order["fields"]) == {"order_id", "status", "priority", "country_code"}
    assert said == [
        "objects.order: owner, fields and max_age from the contract; replicas, warn_age, require_lineage kept"
    ]
    assert "total" in policy["objects"]["order"]["fields"]  # the policy read is left as it was
    policy_from_document(merged)


def customer_contract(**members: Any) -> dict[str, Any]:
    """A contract for the example's customer, served from `server`, saying only what `members` say."""
    server = members.pop("server", "salesforce")
    return {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "servers": [{"server": server}],
        "schema": [{"name": "customer", **members.pop("schema", {})}],
        **members,
    }


EXAMPLE_DOCUMENT: dict[str, Any] = yaml.safe_load(EXAMPLE_POLICY.read_text(encoding="utf-8"))
EMAIL = {"name": "email", "logicalType": "string", "required": True}
LATENCY_2H = [{"property": "latency", "value": 2, "unit": "h"}]


def test_merging_a_contract_without_properties_keeps_the_fields() -> None:
    merged, said = merge_into(EXAMPLE_DOCUMENT, translate_contract(customer_contract(slaProperties=LATENCY_2H)))

    customer = merged["objects"]["customer"]
    assert customer["fields"] == EXAMPLE_DOCUMENT["objects"]["customer"]["fields"]
    assert customer["max_age"] == "2h"
    assert said == [
        "objects.customer: owner and max_age from the contract; replicas, warn_age, on_conflict kept",
        "objects.customer: fields kept from the policy: the contract lists no properties for it",
    ]
    policy_from_document(merged)


@pytest.mark.parametrize("default_max_age", [None, timedelta(hours=6)])
def test_merging_a_contract_without_a_latency_keeps_the_max_age(default_max_age: timedelta | None) -> None:
    document = customer_contract(schema={"properties": [EMAIL]})

    merged, said = merge_into(EXAMPLE_DOCUMENT, translate_contract(document, default_max_age=default_max_age))

    customer = merged["objects"]["customer"]
    assert (customer["max_age"], customer["fields"]) == ("1h", {"email": {"type": "str", "required": True}})
    assert said == [
        "objects.customer: owner and fields from the contract; replicas, warn_age, on_conflict kept",
        "objects.customer: max_age 1h kept from the policy: the contract states no latency for it",
    ]
    policy_from_document(merged)


def test_merging_a_new_owner_drops_it_from_the_replicas() -> None:
    document = customer_contract(server="sap", slaProperties=LATENCY_2H, schema={"properties": [EMAIL]})

    merged, said = merge_into(EXAMPLE_DOCUMENT, translate_contract(document))

    customer = merged["objects"]["customer"]
    assert (customer["owner"], customer["replicas"]) == ("sap", ["warehouse"])
    assert said[-1] == "objects.customer: replica sap dropped: it is the owner now"
    assert policy_from_document(merged).objects["customer"].replicas == ["warehouse"]
    assert EXAMPLE_DOCUMENT["objects"]["customer"]["replicas"] == ["sap", "warehouse"]  # the policy read stays


def test_merging_a_new_source_and_object() -> None:
    policy = yaml.safe_load(EXAMPLE_POLICY.read_text(encoding="utf-8"))

    merged, said = merge_into(policy, translated("payments.odcs.yaml"))

    assert said == ["sources.my-postgres: added (team daustin)", "objects.tbl: added", "objects.receivers: added"]
    assert set(policy_from_document(merged).objects) >= {"tbl", "receivers", "customer"}


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [("ACC[0-9]{8}", "ACC12345678", True), ("ACC[0-9]{8}", "xACC12345678", True), ("^ACC", "xACC", False)],
)
def test_an_unanchored_pattern_still_matches_anywhere(pattern: str, value: str, matches: bool) -> None:
    import re

    assert (re.match(anchored(pattern), value) is not None) == matches
