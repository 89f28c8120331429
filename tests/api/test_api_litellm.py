"""LiteLLM's Generic Guardrail API (`POST /beta/litellm_basic_guardrail_api`), with the request bodies LiteLLM sends.

LiteLLM posts `GenericGuardrailAPIRequest.model_dump()`: every member present, the optional ones null.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api import Settings, create_app
from guard import StoreError
from tests.api.conftest import auth_as
from tests.integrations.conftest import customer
from tests.serving import AppClient

ENDPOINT = "/beta/litellm_basic_guardrail_api"
FRESH = customer("cust-fresh", "C-1042", "salesforce", timedelta(minutes=5))
STALE = customer("cust-stale", "C-2001", "sap", timedelta(hours=3, minutes=2, seconds=30), name="Bruno Costa")
OWNER = customer("cust-owner", "C-3003", "salesforce", timedelta(minutes=4), name="Carla Dias")
SAP_COPY = customer("cust-sap-copy", "C-3003", "sap", timedelta(minutes=3), credit_limit=9000.0, name="Carla Dias")
STALE_NOTICE = "record withheld: customer C-2001 from sap (STALE: 3h 2m old, the limit is 1h)"


@pytest.fixture(autouse=True)
def _records_dated_now() -> None:
    """Date the records against the clock when each test starts (not when the module was imported)."""
    FRESH.update(customer("cust-fresh", "C-1042", "salesforce", timedelta(minutes=5)))
    STALE.update(customer("cust-stale", "C-2001", "sap", timedelta(hours=3, minutes=2, seconds=30), name="Bruno Costa"))
    OWNER.update(customer("cust-owner", "C-3003", "salesforce", timedelta(minutes=4), name="Carla Dias"))
    SAP_COPY.update(
        customer("cust-sap-copy", "C-3003", "sap", timedelta(minutes=3), credit_limit=9000.0, name="Carla Dias")
    )


def litellm_body(texts: list[str] | None, **members: Any) -> dict[str, Any]:
    """A request as LiteLLM's generic_guardrail_api hook builds it."""
    return {
        "input_type": "request",
        "litellm_call_id": "c0ffee00-1111-4222-8333-444455556666",
        "litellm_trace_id": "trace-7",
        "structured_messages": None,
        "images": None,
        "tools": None,
        "texts": texts,
        "request_data": {"user_api_key_alias": "support-team", "user_api_key_team_id": "t-1"},
        "additional_provider_specific_params": {},
        **members,
    }


def post(client: AppClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    answer = client.post(ENDPOINT, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def texts_of(names: list[str]) -> list[str]:
    """Texts by name: FRESH and STALE are those records as JSON, NOTICE the stale one's notice, others as they are."""
    known = {"FRESH": json.dumps(FRESH), "STALE": json.dumps(STALE), "NOTICE": STALE_NOTICE}
    return [known.get(name, name) for name in names]


@pytest.mark.parametrize(
    ("texts", "action", "rewritten"),
    [
        (["What is the credit limit of C-1042?"], "NONE", None),  # no records at all
        (["hi", "FRESH"], "NONE", None),  # every record allowed
        (["hi", "FRESH", "STALE"], "GUARDRAIL_INTERVENED", ["hi", "FRESH", "NOTICE"]),
    ],
    ids=["no-records", "all-allowed", "stale-withheld"],
)
def test_the_action_says_what_happened_to_the_records(
    client: AppClient, texts: list[str], action: str, rewritten: list[str] | None
) -> None:
    answer = post(client, litellm_body(texts_of(texts)))
    assert answer["action"] == action
    assert answer.get("texts") == (None if rewritten is None else texts_of(rewritten))
    assert "blocked_reason" not in answer


def test_a_list_of_records_in_one_text_keeps_the_allowed_ones(client: AppClient) -> None:
    answer = post(client, litellm_body([json.dumps([OWNER, SAP_COPY])]))
    assert answer["action"] == "GUARDRAIL_INTERVENED"
    owner, withheld = json.loads(answer["texts"][0])
    assert owner == OWNER
    assert withheld == "record withheld: customer C-3003 from sap (CONFLICT: another copy is used)"
    assert "9000" not in answer["texts"][0]


def test_refuse_blocks_the_call_with_the_reason_in_words(client: AppClient) -> None:
    body = litellm_body([json.dumps(STALE)], additional_provider_specific_params={"on_block": "refuse"})
    answer = post(client, body)
    assert answer["action"] == "BLOCKED"
    assert "Freshguard blocked 1 of 1 records" in answer["blocked_reason"]
    assert "customer C-2001 from sap is 3h 2m old" in answer["blocked_reason"]
    [run] = client.get("/v1/runs").json()["runs"]
    assert client.get(f"/v1/runs/{run['run_id']}").json()["model_calls"] == []  # the call did not happen


def test_records_in_structured_tool_messages_are_checked_when_no_text_carries_any(client: AppClient) -> None:
    messages = [
        {"role": "user", "content": "What is Bruno's limit?"},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps(STALE)},
    ]
    answer = post(client, litellm_body(None, structured_messages=messages))
    assert answer["action"] == "BLOCKED"  # LiteLLM takes no rewritten messages: blocking is what is left
    assert "does not let a guardrail rewrite" in answer["blocked_reason"]


def test_the_run_is_linked_to_litellms_call_and_kept_under_the_configured_pipeline(client: AppClient) -> None:
    params = {"pipeline": "support-bot", "model": "gpt-4o"}
    post(client, litellm_body([json.dumps(FRESH), json.dumps(STALE)], additional_provider_specific_params=params))
    [run] = client.get("/v1/runs").json()["runs"]
    assert run["pipeline"] == "support-bot"
    calls = client.get(f"/v1/runs/{run['run_id']}").json()["model_calls"]
    assert [(c["model"], c["call_id"], c["extra"]) for c in calls] == [
        ("gpt-4o", "c0ffee00-1111-4222-8333-444455556666", {"integration": "litellm", "trace_id": "trace-7"})
    ]
    lineage = client.get("/v1/lineage/customer/C-1042").json()
    assert [c["call_id"] for c in lineage["model_calls"]] == ["c0ffee00-1111-4222-8333-444455556666"]


def test_lineage_records_the_model_litellm_sends(client: AppClient) -> None:
    post(client, litellm_body([json.dumps(FRESH)], model="claude-sonnet-4", additional_provider_specific_params={}))
    post(client, litellm_body([json.dumps(FRESH)], additional_provider_specific_params={}))
    runs = client.get("/v1/runs").json()["runs"]
    models = [client.get(f"/v1/runs/{r['run_id']}").json()["model_calls"][0]["model"] for r in runs]
    assert sorted(models) == ["claude-sonnet-4", "unknown"]  # never "litellm", which is no model


def test_the_models_answer_is_not_checked(client: AppClient) -> None:
    answer = post(client, litellm_body([json.dumps(STALE)], input_type="response"))
    assert answer == {"action": "NONE"}
    assert client.get("/v1/runs").json()["runs"] == []


def test_a_minimal_body_from_an_older_litellm_is_taken(client: AppClient) -> None:
    """The first documented shape: texts, request_data, input_type, additional_provider_specific_params."""
    body = {
        "texts": [json.dumps(STALE)],
        "request_data": {},
        "input_type": "request",
        "additional_provider_specific_params": {},
    }
    assert post(client, body)["action"] == "GUARDRAIL_INTERVENED"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"texts": "not a list", "input_type": "request"}, "body.texts"),
        ({"texts": [], "input_type": "sideways"}, "body.input_type"),
        (litellm_body(["{}"], additional_provider_specific_params={"on_block": "drop"}), "on_block"),
        (litellm_body(["{}"], additional_provider_specific_params={"pipeline": ""}), "pipeline"),
    ],
)
def test_a_body_litellm_would_not_send_is_a_422_problem(client: AppClient, body: dict[str, Any], said: str) -> None:
    answer = client.post(ENDPOINT, json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert said in answer.json()["detail"]


def test_not_json_is_a_400_problem(client: AppClient) -> None:
    answer = client.post(ENDPOINT, content=b"{", headers={"content-type": "application/json"})
    assert answer.status_code == 400


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("dashboard", 403), ("erp-sync", 403), ("support-bot", 200)])
def test_the_guardrail_endpoint_needs_a_pipeline_key(
    settings: Settings, keys_file: Path, key: str | None, status: int
) -> None:
    with AppClient(create_app(settings.model_copy(update={"keys_file": keys_file}))) as keyed:
        answer = keyed.post(ENDPOINT, json=litellm_body([json.dumps(FRESH)]), headers=auth_as(key) if key else {})
        assert answer.status_code == status
        if status == 200:
            [run] = keyed.get("/v1/runs", headers=auth_as(key or "")).json()["runs"]
            assert run["pipeline"] == "support-bot"  # the key's name, when the config names no pipeline


# -- read fail-closed, as the gateway reads --------------------------------------------------------------


def test_a_list_mixing_records_with_other_items_is_checked_item_by_item(client: AppClient) -> None:
    answer = post(client, litellm_body(["q", json.dumps([STALE, {"page": 1}])]))
    assert answer["action"] == "GUARDRAIL_INTERVENED"
    assert json.loads(answer["texts"][1]) == [
        STALE_NOTICE,
        "record withheld: record #1 (INVALID_RECORD: malformed envelope (id, object, key, source))",
    ]


def test_records_wrapped_in_an_object_are_checked(client: AppClient) -> None:
    answer = post(client, litellm_body([json.dumps({"results": [FRESH, STALE]})]))
    assert answer["action"] == "GUARDRAIL_INTERVENED"
    assert json.loads(answer["texts"][0]) == {"results": [FRESH, STALE_NOTICE]}


def test_a_text_holding_records_it_cannot_take_apart_is_withheld_whole(client: AppClient) -> None:
    answer = post(client, litellm_body(["q", json.dumps(STALE) + "\nEnd of results"]))
    assert answer["action"] == "GUARDRAIL_INTERVENED"
    assert answer["texts"][0] == "q"
    assert answer["texts"][1].startswith("tool result withheld: it seems to hold records")
    assert "Bruno Costa" not in json.dumps(answer)


def test_records_in_a_tool_message_no_text_repeats_are_checked_too(client: AppClient) -> None:
    messages = [
        {"role": "user", "content": "q"},
        {"role": "tool", "tool_call_id": "c0", "content": json.dumps(FRESH)},
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps(STALE)},
    ]
    answer = post(client, litellm_body(["q", json.dumps(FRESH)], structured_messages=messages))
    assert answer["action"] == "BLOCKED"  # the stale record sits where LiteLLM takes no rewrite
    assert "cust-stale" in answer["blocked_reason"]


def test_a_tool_message_a_text_repeats_is_rewritten_there(client: AppClient) -> None:
    messages = [{"role": "tool", "tool_call_id": "c1", "content": json.dumps(STALE)}]
    answer = post(client, litellm_body([json.dumps(STALE)], structured_messages=messages))
    assert answer == {"action": "GUARDRAIL_INTERVENED", "texts": [STALE_NOTICE]}


# -- the operator decides what a block does; end users cannot --------------------------------------------


@pytest.mark.parametrize(
    ("forced", "asked", "action"),
    [
        ("refuse", {"on_block": "withhold"}, "BLOCKED"),
        ("refuse", {}, "BLOCKED"),
        ("withhold", {"on_block": "refuse"}, "GUARDRAIL_INTERVENED"),
        ("refuse", {"on_block": "anything"}, "BLOCKED"),  # what the request says is not even read
    ],
)
def test_a_forced_on_block_overrides_the_request(
    settings: Settings, forced: str, asked: dict[str, str], action: str
) -> None:
    with AppClient(create_app(settings.model_copy(update={"litellm_force_on_block": forced}))) as forcing:
        answer = post(forcing, litellm_body([json.dumps(STALE)], additional_provider_specific_params=asked))
    assert answer["action"] == action


def test_the_forced_choice_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("FRESHGUARD_LITELLM_FORCE_ON_BLOCK", "refuse")
    assert Settings(policy=settings.policy).litellm_force_on_block == "refuse"
    monkeypatch.setenv("FRESHGUARD_LITELLM_FORCE_ON_BLOCK", "drop")
    with pytest.raises(ValueError, match="litellm_force_on_block"):
        Settings(policy=settings.policy)


def test_a_failed_link_still_answers_with_the_decision(client: AppClient, caplog: pytest.LogCaptureFixture) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise StoreError("the lineage store is unreachable")

    store = client.app.state.guard.store  # type: ignore[attr-defined]
    store.link_consumption = fail
    answer = post(client, litellm_body([json.dumps(FRESH), json.dumps(STALE)]))
    assert answer["action"] == "GUARDRAIL_INTERVENED"
    assert "could not be linked" in caplog.text
