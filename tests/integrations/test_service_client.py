"""ServiceClient against a real service (uvicorn on loopback): the same results as Guard.check, errors in words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from api import Settings, create_app
from guard import Action, CheckResult, Guard, InputError, ServiceClient, ServiceError
from guard.integrations.checking import acheck_records, alink_call, check_records, link_call
from tests.api.conftest import key_of, keys_file  # noqa: F401 - keys_file is a fixture
from tests.conftest import EXAMPLE_POLICY, ts
from tests.integrations.conftest import EXPECTED, LiveService, customer, run_async, serve
from tests.serving import free_port


def outcome(result: CheckResult) -> list[tuple[str, str, list[str]]]:
    return [(d.id, d.action.value, [c.value for c in d.codes]) for d in result.decisions]


def test_a_service_check_is_the_result_an_in_process_guard_gives(
    in_process: Guard, service_client: ServiceClient, records: list[dict[str, Any]]
) -> None:
    local = in_process.check(records, pipeline="p")
    remote = service_client.check(records, pipeline="p")

    assert outcome(remote) == outcome(local) == [(i, a, c) for i, a, c in EXPECTED]
    assert remote.verdict == local.verdict
    assert remote.allowed == local.allowed == (records[0], records[2])
    assert (remote.policy.name, remote.policy.version) == (local.policy.name, local.policy.version)
    assert [[r.message[:30] for r in d.reasons] for d in remote.decisions] == [
        [r.message[:30] for r in d.reasons] for d in local.decisions
    ]
    assert remote.pipeline == "p"
    assert remote.checked_at.tzinfo is not None


def test_async_checks_and_links_reach_the_service(live_service: LiveService, records: list[dict[str, Any]]) -> None:
    async def run() -> CheckResult:
        async with ServiceClient(live_service.base_url) as client:
            result = await acheck_records(client, records, pipeline="p", consumer={"team": "support"})
            await alink_call(client, result.run_id, model="gpt-x", call_id="c-1", integration="openai")
            return result

    result = run_async(run)
    assert [d.action for d in result.decisions] == [Action.ALLOW, Action.BLOCK, Action.ALLOW, Action.BLOCK]
    run_row = live_service.store().get_run(result.run_id)
    assert run_row is not None
    assert [(c["model"], c["call_id"], c["extra"]) for c in run_row["model_calls"]] == [
        ("gpt-x", "c-1", {"integration": "openai"})
    ]


def test_a_link_from_an_in_process_guard_goes_to_its_store(in_process: Guard, records: list[dict[str, Any]]) -> None:
    result = check_records(in_process, records, pipeline="p")
    assert link_call(in_process, result.run_id, model="m", call_id="c", integration="openai", extra={"n": 1})
    assert in_process.store is not None
    run = in_process.store.get_run(result.run_id)
    assert run is not None
    assert [(c["model"], c["call_id"], c["extra"]) for c in run["model_calls"]] == [
        ("m", "c", {"n": 1, "integration": "openai"})
    ]


def test_a_guard_without_a_store_links_nothing(records: list[dict[str, Any]], signing_key: None) -> None:
    from guard import load_policy

    guard = Guard(load_policy(EXAMPLE_POLICY))
    result = guard.check(records, pipeline="p")
    assert link_call(guard, result.run_id, model="m", call_id="c", integration="openai") is False


@pytest.fixture
def keyed_service(tmp_path: Path, keys_file: Path, signing_key: None) -> Iterator[str]:  # noqa: F811
    app = create_app(
        Settings(policy=EXAMPLE_POLICY, database_url=f"sqlite:///{tmp_path / 'k.db'}", keys_file=keys_file)
    )
    yield from serve(app)


@pytest.mark.parametrize(
    ("key", "status", "said"),
    [
        (None, 401, "needs an API key"),
        ("not-a-key", 401, "not one this service accepts"),
        (key_of("dashboard"), 403, "use a key with the pipeline role"),
    ],
)
def test_a_refusal_says_what_the_service_answered(
    keyed_service: str, records: list[dict[str, Any]], key: str | None, status: int, said: str
) -> None:
    with ServiceClient(keyed_service, api_key=key) as client, pytest.raises(ServiceError, match=said) as caught:
        client.check(records, pipeline="p")
    assert caught.value.status == status
    assert caught.value.problem is not None


def test_a_pipeline_key_checks_and_links(keyed_service: str, records: list[dict[str, Any]]) -> None:
    with ServiceClient(keyed_service, api_key=key_of("support-bot")) as client:
        result = client.check(records, pipeline="p")
        linked = client.link_consumption(result.run_id, "m", "c", {"integration": "openai"})
        assert linked["run_id"] == result.run_id
        with pytest.raises(ServiceError, match="404") as missing:
            client.link_consumption("no-such-run", "m")
    assert missing.value.status == 404


def test_an_unreachable_service_is_a_service_error_that_says_where() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with ServiceClient(base, timeout=2) as client, pytest.raises(ServiceError, match="could not reach") as caught:
        client.check([], pipeline="p")
    assert base in str(caught.value)
    assert caught.value.status is None


def test_a_bad_pipeline_name_is_refused_by_the_service(service_client: ServiceClient) -> None:
    with pytest.raises(ServiceError, match="422") as caught:
        service_client.check([], pipeline="")
    assert caught.value.status == 422


def test_records_that_are_not_json_are_refused_before_sending(service_client: ServiceClient) -> None:
    with pytest.raises(InputError, match=r"record #0 \('a'\) .* `blob` holds an object, which JSON cannot carry"):
        service_client.check([{"id": "a", "blob": object()}], pipeline="p")


def _odd(name: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    record = customer(f"odd-{name}", "C-1042", "salesforce", timedelta(minutes=5))
    if name == "datetime-observed_at":
        record["observed_at"] = now - timedelta(minutes=5)
    elif name == "datetime-lineage":
        record["lineage"] = [{"system": "salesforce", "at": now - timedelta(minutes=6)}]
    elif name == "tuple-lineage":
        record["lineage"] = ({"system": "salesforce", "at": ts(now - timedelta(minutes=6))},)
    elif name == "decimal-field":
        record["fields"]["credit_limit"] = Decimal("5000")
    elif name == "int-key":
        record["fields"][1] = "x"
    return record


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("datetime-observed_at", "observed_at"),
        ("datetime-lineage", r"lineage\[0\]\.at"),
        ("tuple-lineage", "lineage"),
        ("decimal-field", r"fields\.credit_limit"),
        ("int-key", r"fields\[1\]"),
    ],
)
def test_a_value_json_cannot_carry_never_gets_a_kinder_decision_through_the_service(
    in_process: Guard, service_client: ServiceClient, name: str, member: str
) -> None:
    """Converting it would decide another record: in-process it is blocked, the client refuses to send it."""
    record = _odd(name)
    local = in_process.check([record], pipeline="p")
    assert [d.action for d in local.decisions] == [Action.BLOCK] or name == "int-key"
    with pytest.raises(InputError, match=rf"record #0 \('odd-{name}'\) .*`{member}` holds"):
        service_client.check([record], pipeline="p")
    with pytest.raises(InputError):
        run_async(lambda: service_client.acheck([record], pipeline="p"))


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 10**30, True, "5000", None],
    ids=["nan", "inf", "bigint", "bool", "text", "null"],
)
def test_values_json_carries_are_decided_alike_in_process_and_through_the_service(
    in_process: Guard, service_client: ServiceClient, value: Any
) -> None:
    record = customer("odd", "C-1042", "salesforce", timedelta(minutes=5))
    record["fields"]["credit_limit"] = value
    local, remote = in_process.check([record], pipeline="p"), service_client.check([record], pipeline="p")
    assert outcome(remote) == outcome(local)


def test_a_record_model_and_a_read_only_mapping_are_sent_as_json(
    in_process: Guard, service_client: ServiceClient
) -> None:
    from types import MappingProxyType

    record = customer("proxy", "C-1042", "salesforce", timedelta(minutes=5))
    proxied = MappingProxyType(record)
    assert outcome(service_client.check([proxied], pipeline="p")) == outcome(in_process.check([proxied], pipeline="p"))


def test_the_key_never_shows_in_the_client_repr() -> None:
    assert "secret" not in repr(ServiceClient("http://127.0.0.1:1", api_key="secret"))
