"""The OpenAI-compatible gateway: the real `openai` client talks to the service (uvicorn on loopback),
which forwards to a real local stand-in for the OpenAI API (tests/integrations/upstream.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai import OpenAI

from api import Settings
from api.app import create_app
from guard import LineageStore
from tests.api.conftest import SAMPLE_KEY, free_port, key_of
from tests.conftest import EXAMPLE_POLICY
from tests.integrations.conftest import customer, serve
from tests.integrations.upstream import MODEL_VERSION, Upstream, make_upstream, system_texts

QUESTION: Any = {"role": "user", "content": "What is the credit limit of C-1042 and C-2001?"}


class Gateway:
    """The service with its gateway, and its lineage store."""

    def __init__(self, base_url: str, database_url: str) -> None:
        self.base_url = base_url
        self.openai_url = f"{base_url}/v1/openai"
        self.database_url = database_url

    def client(self, api_key: str = "unused-in-open-mode", **options: Any) -> OpenAI:
        return OpenAI(base_url=self.openai_url, api_key=api_key, max_retries=options.pop("max_retries", 2), **options)

    def store(self) -> LineageStore:
        return LineageStore(self.database_url, migrate=False)

    def runs(self) -> list[dict[str, Any]]:
        store = self.store()
        try:
            return [store.get_run(r["run_id"]) or {} for r in store.list_runs()]
        finally:
            store.close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    stand_in = make_upstream()
    for base_url in serve(stand_in.app):
        stand_in.base_url = f"{base_url}/v1"
        yield stand_in


def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[Gateway]:
    monkeypatch.setenv("STRIPE_SIGNING_KEY", SAMPLE_KEY)
    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    app = create_app(Settings(policy=EXAMPLE_POLICY, database_url=database_url, **settings))
    for base_url in serve(app):
        yield Gateway(base_url, database_url)


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: Upstream) -> Iterator[Gateway]:
    yield from start(tmp_path, monkeypatch, openai_upstream_url=upstream.base_url, openai_upstream_key="sk-upstream")


def tool_call_messages(*contents: str) -> Any:
    """A conversation in which the assistant called a CRM tool once per content, and each tool answered it."""
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": "crm_lookup", "arguments": "{}"}}
             for i in range(len(contents))]  # fmt: skip
    return [
        QUESTION,
        {"role": "assistant", "content": None, "tool_calls": calls},
        *({"role": "tool", "tool_call_id": f"call_{i}", "content": c} for i, c in enumerate(contents)),
    ]


FRESH = customer("cust-fresh", "C-1042", "salesforce", timedelta(minutes=5))
STALE = customer("cust-stale", "C-2001", "sap", timedelta(hours=3, minutes=2, seconds=30), name="Bruno Costa")
OWNER = customer("cust-owner", "C-3003", "salesforce", timedelta(minutes=4), name="Carla Dias")
SAP_COPY = customer("cust-sap-copy", "C-3003", "sap", timedelta(minutes=3), credit_limit=9000.0, name="Carla Dias")
STALE_NOTICE = "record withheld: customer C-2001 from sap is 3h 2m old; the limit agreed with sales-ops is 1h"


@pytest.fixture(autouse=True)
def _records_dated_now() -> None:
    """Date the records against the clock when each test starts (not when the module was imported)."""
    FRESH.update(customer("cust-fresh", "C-1042", "salesforce", timedelta(minutes=5)))
    STALE.update(customer("cust-stale", "C-2001", "sap", timedelta(hours=3, minutes=2, seconds=30), name="Bruno Costa"))
    OWNER.update(customer("cust-owner", "C-3003", "salesforce", timedelta(minutes=4), name="Carla Dias"))
    SAP_COPY.update(
        customer("cust-sap-copy", "C-3003", "sap", timedelta(minutes=3), credit_limit=9000.0, name="Carla Dias")
    )


def test_a_stale_tool_result_is_withheld_and_the_call_is_linked(gateway: Gateway, upstream: Upstream) -> None:
    messages = tool_call_messages(json.dumps(FRESH), json.dumps(STALE))

    answer = gateway.client().chat.completions.create(model="gpt-4o", messages=messages)

    assert answer.id == "chatcmpl-1"
    sent = upstream.last["messages"]
    assert json.loads(sent[2]["content"]) == FRESH  # forwarded as the tool sent it
    assert sent[3]["content"].startswith(STALE_NOTICE)
    assert upstream.headers[-1]["authorization"] == "Bearer sk-upstream"
    [run] = gateway.runs()
    assert (run["pipeline"], run["verdict"], run["blocked"]) == ("openai-gateway", "partial", 1)
    assert [(c["model"], c["call_id"], c["extra"]) for c in run["model_calls"]] == [
        (MODEL_VERSION, "chatcmpl-1", {"integration": "gateway", "endpoint": "chat.completions", "stream": False})
    ]


def test_a_list_of_records_keeps_the_allowed_ones_and_words_the_blocked(gateway: Gateway, upstream: Upstream) -> None:
    messages = tool_call_messages(json.dumps([OWNER, SAP_COPY]))
    gateway.client().chat.completions.create(model="gpt-4o", messages=messages)
    owner, withheld = json.loads(upstream.last["messages"][2]["content"])
    assert owner == OWNER
    assert withheld.startswith("record withheld: customer C-3003 from sap")
    assert "salesforce" in withheld  # the conflict says which copy was kept


def test_tool_text_parts_are_read_and_rewritten(gateway: Gateway, upstream: Upstream) -> None:
    messages = tool_call_messages("placeholder")
    messages[2]["content"] = [{"type": "text", "text": json.dumps(STALE)}]
    gateway.client().chat.completions.create(model="gpt-4o", messages=messages)
    assert upstream.last["messages"][2]["content"][0]["text"] == STALE_NOTICE


def test_context_records_become_a_system_message_and_the_extension_is_not_forwarded(
    gateway: Gateway, upstream: Upstream
) -> None:
    extension = {"records": [FRESH, STALE], "pipeline": "support-bot"}
    gateway.client().chat.completions.create(model="gpt-4o", messages=[QUESTION], extra_body={"freshguard": extension})
    assert "freshguard" not in upstream.last
    [context] = system_texts(upstream.last)
    assert "[customer C-1042 from salesforce" in context
    assert f"- {STALE_NOTICE}" in context
    assert upstream.last["messages"][0]["role"] == "system"
    assert upstream.last["messages"][1] == QUESTION
    assert [r["pipeline"] for r in gateway.runs()] == ["support-bot"]


def test_a_refused_request_is_a_4xx_the_client_does_not_retry(gateway: Gateway, upstream: Upstream) -> None:
    client = gateway.client(max_retries=3)
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.chat.completions.create(
            model="gpt-4o",
            messages=tool_call_messages(json.dumps(FRESH), json.dumps(STALE)),
            extra_body={"freshguard": {"on_block": "refuse"}},
        )
    error = refused.value
    assert error.status_code == 422
    assert error.code == "freshguard_blocked"
    assert error.param == "messages[3].content"
    assert "customer C-2001 from sap is 3h 2m old" in error.message
    assert "on_block 'withhold'" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    assert upstream.bodies == []  # never forwarded
    [run] = gateway.runs()  # one check: the client did not send it again
    assert error.response.headers["x-freshguard-run-id"] == run["run_id"]
    assert run["model_calls"] == []


def test_refusal_can_be_the_services_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: Upstream
) -> None:
    for gateway in start(tmp_path, monkeypatch, openai_upstream_url=upstream.base_url, openai_on_block="refuse"):
        with pytest.raises(openai.UnprocessableEntityError, match="Freshguard refused this request"):
            gateway.client().chat.completions.create(
                model="gpt-4o",
                messages=tool_call_messages(json.dumps(STALE)),
            )
        # a request may still ask to withhold
        gateway.client().chat.completions.create(
            model="gpt-4o",
            messages=tool_call_messages(json.dumps(STALE)),
            extra_body={"freshguard": {"on_block": "withhold"}},
        )
        assert upstream.last["messages"][2]["content"] == STALE_NOTICE


def test_a_stream_is_forwarded_as_it_comes_and_linked_on_its_first_chunk(gateway: Gateway, upstream: Upstream) -> None:
    stream = gateway.client().chat.completions.create(
        model="gpt-4o",
        messages=tool_call_messages(json.dumps(STALE)),
        stream=True,
    )
    chunks = list(stream)
    assert {c.id for c in chunks} == {"chatcmpl-1"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == "seen 0 system messages"
    assert upstream.last["stream"] is True
    assert upstream.last["messages"][2]["content"] == STALE_NOTICE
    [run] = gateway.runs()
    assert [(c["model"], c["call_id"], c["extra"]["stream"]) for c in run["model_calls"]] == [
        (MODEL_VERSION, "chatcmpl-1", True)
    ]


def test_a_request_without_records_is_forwarded_unchanged(gateway: Gateway, upstream: Upstream) -> None:
    messages = [*tool_call_messages("the weather is fine"), {"role": "user", "content": '{"not": "a record"}'}]
    gateway.client().chat.completions.create(model="gpt-4o", messages=messages, temperature=0.2)
    assert upstream.last["messages"] == messages
    assert upstream.last["temperature"] == 0.2
    assert gateway.runs() == []


def test_an_upstream_error_is_passed_through(gateway: Gateway, upstream: Upstream) -> None:
    with pytest.raises(openai.BadRequestError, match="the stand-in refuses this model"):
        gateway.client(max_retries=0).chat.completions.create(
            model="refuse-me",
            messages=tool_call_messages(json.dumps(FRESH)),
        )
    [run] = gateway.runs()
    assert run["model_calls"] == []  # the model did not answer: nothing consumed the run


@pytest.mark.parametrize(
    ("body", "param", "said"),
    [
        (b"not json", None, "the body is not JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (b'{"model": "m"}', "messages", "messages must be a list"),
        (b'{"messages": []}', "model", "model must name the model"),
        (b'{"model": "m", "messages": [], "freshguard": []}', "freshguard", "freshguard must be an object"),
        (b'{"model": "m", "messages": [], "freshguard": {"records": {}}}', "freshguard.records", "must be a list"),
        (b'{"model": "m", "messages": [], "freshguard": {"records": [1]}}', "freshguard.records[0]", "envelope"),
        (b'{"model": "m", "messages": [], "freshguard": {"pipeline": ""}}', "freshguard.pipeline", "1 to 200"),
        (b'{"model": "m", "messages": [], "freshguard": {"on_block": "drop"}}', "freshguard.on_block", "'withhold'"),
    ],
)
def test_a_bad_request_is_a_400_in_openais_shape(gateway: Gateway, body: bytes, param: str | None, said: str) -> None:
    answer = httpx2.post(
        f"{gateway.openai_url}/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.headers["x-should-retry"] == "false"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 400
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "freshguard_invalid_request",
        param,
    )
    assert said in error["message"]


def test_a_pipeline_header_that_is_too_long_is_a_400(gateway: Gateway) -> None:
    answer = httpx2.post(
        f"{gateway.openai_url}/chat/completions",
        json={"model": "m", "messages": tool_call_messages(json.dumps(FRESH))},
        headers={"x-freshguard-pipeline": "p" * 300},
    )
    assert answer.status_code == 400
    assert "pipeline must be a name of 1 to 200" in answer.json()["error"]["message"]


def test_the_pipeline_can_come_from_a_default_header(gateway: Gateway) -> None:
    gateway.client(default_headers={"x-freshguard-pipeline": "agent-7"}).chat.completions.create(
        model="gpt-4o",
        messages=tool_call_messages(json.dumps(FRESH)),
    )
    assert [r["pipeline"] for r in gateway.runs()] == ["agent-7"]


def test_without_an_upstream_the_gateway_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for gateway in start(tmp_path, monkeypatch):
        with pytest.raises(openai.InternalServerError, match="FRESHGUARD_OPENAI_UPSTREAM_URL") as caught:
            gateway.client(max_retries=0).chat.completions.create(model="m", messages=[QUESTION])
        assert caught.value.status_code == 503


def test_an_unreachable_upstream_is_a_502(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    for gateway in start(tmp_path, monkeypatch, openai_upstream_url=nowhere):
        for stream in (False, True):
            answer = httpx2.post(
                f"{gateway.openai_url}/chat/completions", json={"model": "m", "messages": [QUESTION], "stream": stream}
            )
            assert answer.status_code == 502
            assert "could not be reached" in answer.json()["error"]["message"]


@pytest.fixture
def keyed_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, keys_file: Path
) -> Iterator[Gateway]:
    yield from start(tmp_path, monkeypatch, openai_upstream_url=upstream.base_url, keys_file=keys_file)


@pytest.mark.parametrize(
    ("key", "error", "status"),
    [
        ("not-a-key", openai.AuthenticationError, 401),
        (key_of("dashboard"), openai.PermissionDeniedError, 403),
        (key_of("erp-sync"), openai.PermissionDeniedError, 403),
    ],
)
def test_the_gateway_needs_a_pipeline_key(
    keyed_gateway: Gateway, upstream: Upstream, key: str, error: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as caught:
        keyed_gateway.client(api_key=key).chat.completions.create(model="m", messages=[QUESTION])
    assert caught.value.status_code == status
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert upstream.bodies == []


def test_a_pipeline_keys_checks_are_kept_under_its_name(keyed_gateway: Gateway) -> None:
    keyed_gateway.client(api_key=key_of("support-bot")).chat.completions.create(
        model="gpt-4o",
        messages=tool_call_messages(json.dumps(FRESH)),
    )
    assert [r["pipeline"] for r in keyed_gateway.runs()] == ["support-bot"]
