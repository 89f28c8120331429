"""The policy file's JSON Schema: from the models; it accepts every policy that loads and refuses broken ones."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings

from guard.policy.schema import SCHEMA_ID, policy_json_schema
from tests.conftest import MINIMAL_POLICY, POLICIES
from tests.policy_strategies import policy_documents

SCHEMA = policy_json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
EXAMPLE_FILES = sorted(POLICIES.glob("*.yaml"))


def errors_of(document: object) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(document)]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert (SCHEMA["$schema"], SCHEMA["$id"]) == ("https://json-schema.org/draft/2020-12/schema", SCHEMA_ID)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_the_example_policies_validate(path: Any) -> None:
    assert errors_of(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_the_minimal_policy_validates() -> None:
    assert errors_of(yaml.safe_load(MINIMAL_POLICY)) == []


def test_durations_appear_as_the_file_writes_them() -> None:
    max_age = SCHEMA["$defs"]["ObjectSpec"]["properties"]["max_age"]
    clock_skew = SCHEMA["properties"]["clock_skew"]

    assert [branch["type"] for branch in max_age["anyOf"]] == ["string", "number"]
    assert "format" not in max_age
    assert clock_skew["default"] == "1m"
    assert max_age["description"] == "freshness SLA: older copies are blocked"


BROKEN: list[tuple[str, str]] = [
    ("objects.customer.max_age: soon", "objects.customer.max_age"),
    ("objects.customer.max_age: -5", "objects.customer.max_age"),
    ("objects.customer.maxage: 1h", "objects.customer"),
    ("objects.customer.fields.tier.type: decimal", "objects.customer.fields.tier.type"),
    ("objects.customer.fields.tier.in: []", "objects.customer.fields.tier.in"),
    ("objects.customer.on_conflict: oldest", "objects.customer.on_conflict"),
    ("version: three", "version"),
    ("naive_timestamps: local", "naive_timestamps"),
    ("slas: {source: sap}", "slas"),
    ("sources: {}", "sources"),
    ("notify.ops.webhook_env: 1-bad", "notify.ops.webhook_env"),
]


@pytest.mark.parametrize(("edit", "expected_path"), BROKEN, ids=[edit for edit, _ in BROKEN])
def test_broken_policies_do_not_validate(edit: str, expected_path: str) -> None:
    document: dict[str, Any] = yaml.safe_load(MINIMAL_POLICY)
    document["notify"] = {"ops": {"webhook_env": "OPS_URL"}}
    dotted, _, value = edit.partition(": ")
    *parents, last = dotted.split(".")
    node = document
    for part in parents:
        node = node[part]
    node[last] = yaml.safe_load(value)

    found = errors_of(document)

    assert found, f"{edit} validated"
    assert any(error.startswith(expected_path) for error in found), found


def test_a_missing_owner_does_not_validate() -> None:
    document: dict[str, Any] = yaml.safe_load(MINIMAL_POLICY)
    del document["objects"]["customer"]["owner"]

    assert errors_of(document) == ["objects.customer: 'owner' is a required property"]


@settings(max_examples=100, deadline=None)
@given(policy_documents())
def test_every_policy_that_loads_validates(document: dict[str, Any]) -> None:
    assert errors_of(document) == []
