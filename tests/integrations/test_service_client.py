"""ServiceClient against a real service (uvicorn on loopback): the same results as Guard.check, errors in words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import Settings, create_app
from guard import Action, CheckResult, Guard, ServiceClient, ServiceError
from guard.integrations.checking import acheck_records, alink_call, check_records, link_call
from tests.api.conftest import free_port, key_of, keys_file  # noqa: F401 - keys_file is a fixture
from tests.conftest import EXAMPLE_POLICY
from tests.integrations.conftest import EXPECTED, LiveService, run_async, serve


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
    with pytest.raises(ServiceError, match="cannot be sent as JSON"):
        service_client.check([{"id": "a", "blob": object()}], pipeline="p")


def test_the_key_never_shows_in_the_client_repr() -> None:
    assert "secret" not in repr(ServiceClient("http://127.0.0.1:1", api_key="secret"))
