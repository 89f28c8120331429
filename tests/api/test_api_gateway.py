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
from guard import LineageStore, StoreError
from tests.api.conftest import SAMPLE_KEY, key_of
from tests.conftest import EXAMPLE_POLICY
from tests.integrations.conftest import customer, serve
from tests.integrations.upstream import MODEL_VERSION, STALL_S, Upstream, make_upstream, system_texts, tool_texts
from tests.serving import free_port

QUESTION: Any = {"role": "user", "content": "What is the credit limit of C-1042 and C-2001?"}


class Gateway:
    """The service with its gateway, and its lineage store."""

    def __init__(self, base_url: str, database_url: str, app: Any = None) -> None:
        self.base_url = base_url
        self.openai_url = f"{base_url}/v1/openai"
        self.database_url = database_url
        self.app = app
        self._clients: list[OpenAI] = []

    def client(self, api_key: str = "unused-in-open-mode", **options: Any) -> OpenAI:
        """A real openai client of the gateway (closed with the gateway)."""
        made = OpenAI(base_url=self.openai_url, api_key=api_key, max_retries=options.pop("max_retries", 2), **options)
        self._clients.append(made)
        return made

    def close(self) -> None:
        """Close the clients made, so that no connection is left for the garbage collector to find."""
        for made in self._clients:
            made.close()

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
        gateway = Gateway(base_url, database_url, app)
        try:
            yield gateway
        finally:
            gateway.close()


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
    assert withheld == "record withheld: customer C-3003 from sap (CONFLICT: another copy is used)"
    assert "9000" not in json.dumps(upstream.last)  # the rejected value never reaches the model


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
    kind = {401: "unauthorized", 403: "forbidden"}[status]  # as every other route says it (it was `401`, `403`)
    assert caught.value.response.json()["type"] == f"urn:freshguard:problem:{kind}"


def test_a_pipeline_keys_checks_are_kept_under_its_name(keyed_gateway: Gateway) -> None:
    keyed_gateway.client(api_key=key_of("support-bot")).chat.completions.create(
        model="gpt-4o",
        messages=tool_call_messages(json.dumps(FRESH)),
    )
    assert [r["pipeline"] for r in keyed_gateway.runs()] == ["support-bot"]


# -- tool results are read fail-closed: whatever looks like a record is checked, or withheld ---------------


MALFORMED = "malformed envelope (id, object, key, source)"


def sent_text(upstream: Upstream) -> str:
    return json.dumps(upstream.last["messages"], ensure_ascii=False)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # a list mixing a record with something else: every item is checked
        (lambda: json.dumps([STALE, {"note": "page 1 of 2"}]),
         lambda: [STALE_NOTICE, f"record withheld: record #1 (INVALID_RECORD: {MALFORMED})"]),
        # records wrapped in an object: read one level deep, the rest kept
        (lambda: json.dumps({"results": [FRESH, STALE], "next": None}),
         lambda: {"results": [FRESH, STALE_NOTICE], "next": None}),
        # an envelope missing `source` is still a record: decided INVALID_RECORD
        (lambda: json.dumps({k: v for k, v in STALE.items() if k != "source"}),
         lambda: "record withheld: record cust-stale (INVALID_RECORD: malformed envelope (source))"),
    ],
    ids=["mixed-list", "wrapped", "missing-source"],
)  # fmt: skip
def test_whatever_looks_like_a_record_is_checked(
    gateway: Gateway, upstream: Upstream, content: Any, expected: Any
) -> None:
    gateway.client().chat.completions.create(model="gpt-4o", messages=tool_call_messages(content()))
    sent = upstream.last["messages"][2]["content"]
    assert (json.loads(sent) if isinstance(expected(), list | dict) else sent) == expected()
    assert "Bruno Costa" not in sent_text(upstream)
    [run] = gateway.runs()
    assert run["blocked"] >= 1


@pytest.mark.parametrize(
    "content",
    [
        lambda: json.dumps(STALE) + "\nEnd of results",
        lambda: "CRM says: " + json.dumps(STALE),
        lambda: json.dumps({"response": {"results": [STALE]}}),
    ],
    ids=["trailing-prose", "leading-prose", "nested-deeper"],
)
def test_a_tool_result_holding_records_it_cannot_take_apart_is_withheld_whole(
    gateway: Gateway, upstream: Upstream, content: Any
) -> None:
    gateway.client().chat.completions.create(model="gpt-4o", messages=tool_call_messages(content()))
    sent = upstream.last["messages"][2]["content"]
    assert sent.startswith("tool result withheld: it seems to hold records Freshguard cannot check one by one")
    assert "Bruno Costa" not in sent_text(upstream)


def test_under_refuse_an_unreadable_tool_result_refuses_the_request(gateway: Gateway, upstream: Upstream) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        gateway.client().chat.completions.create(
            model="gpt-4o",
            messages=tool_call_messages(json.dumps(FRESH) + " (more on page 2)"),
            extra_body={"freshguard": {"on_block": "refuse"}},
        )
    assert refused.value.code == "freshguard_blocked"
    assert refused.value.param == "messages[2].content"
    assert upstream.bodies == []


def test_a_schema_notice_never_repeats_the_rejected_value(gateway: Gateway, upstream: Upstream) -> None:
    bad = customer("cust-bad", "C-9", "salesforce", timedelta(minutes=1))
    bad["fields"]["email"] = "secret-ssn-123-45-6789"
    gateway.client().chat.completions.create(model="gpt-4o", messages=tool_call_messages(json.dumps(bad)))
    assert upstream.last["messages"][2]["content"] == (
        "record withheld: customer C-9 from salesforce (SCHEMA_VIOLATION: breaks its contract on email (pattern))"
    )
    [run] = gateway.runs()  # the operator's record keeps the whole reason
    [decision] = run["decisions"]
    assert "secret-ssn-123-45-6789" in decision["explanations"][0]["message"]


# -- after the model answered: a failed link loses no answer ------------------------------------------


def failing_links(gateway_app: Any) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise StoreError("the lineage store is unreachable")

    gateway_app.state.guard.store.link_consumption = fail


def test_a_failed_link_returns_the_answer_with_a_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    for gateway in start(
        tmp_path, monkeypatch, openai_upstream_url=upstream.base_url, openai_upstream_key="sk-upstream"
    ):
        failing_links(gateway.app)
        raw = gateway.client(max_retries=3).chat.completions.with_raw_response.create(
            model="gpt-4o", messages=tool_call_messages(json.dumps(FRESH))
        )
        assert raw.http_response.status_code == 200
        assert raw.headers["x-freshguard-link"] == "failed"
        assert raw.parse().id == "chatcmpl-1"
        assert len(upstream.bodies) == 1  # the model was called (and billed) once
        stream = gateway.client().chat.completions.create(
            model="gpt-4o", messages=tool_call_messages(json.dumps(FRESH)), stream=True
        )
        assert (
            "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip() == "seen 0 system messages"
        )
    assert "could not be linked" in caplog.text
    assert "sk-upstream" not in caplog.text


# -- upstream trouble, in Freshguard's words ----------------------------------------------------------


def test_an_upstream_url_with_credentials_is_never_shown_to_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"http://user:s3cretpass@127.0.0.1:{free_port()}/v1?api-key=AZKEY"
    for gateway in start(tmp_path, monkeypatch, openai_upstream_url=nowhere):
        answer = httpx2.post(f"{gateway.openai_url}/chat/completions", json={"model": "m", "messages": [QUESTION]})
        assert answer.status_code == 502
        assert answer.json()["error"]["message"].startswith("the upstream model could not be reached (ConnectError)")
        for secret in ("s3cretpass", "AZKEY", "user:"):
            assert secret not in answer.text
    assert "http://127.0.0.1:" in caplog.text  # the operator's log names the host
    assert "s3cretpass" not in caplog.text
    assert "AZKEY" not in caplog.text


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_refuses_the_gateways_key_is_a_502_in_freshguards_words(
    gateway: Gateway, stream: bool
) -> None:
    answer = httpx2.post(
        f"{gateway.openai_url}/chat/completions",
        json={"model": "refuse-key", "messages": tool_call_messages(json.dumps(FRESH)), "stream": stream},
    )
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == "freshguard_upstream_auth"
    assert "FRESHGUARD_OPENAI_UPSTREAM_KEY" in error["message"]
    assert "sk-up" not in answer.text
    assert "Incorrect API key" not in answer.text


def test_an_upstream_that_breaks_off_a_stream_ends_it_with_an_error_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: Upstream
) -> None:
    timeout = STALL_S / 3
    for gateway in start(tmp_path, monkeypatch, openai_upstream_url=upstream.base_url, openai_timeout_s=timeout):
        stream = gateway.client(max_retries=0).chat.completions.create(
            model="break-off", messages=tool_call_messages(json.dumps(FRESH)), stream=True
        )
        seen: list[str | None] = []
        with pytest.raises(openai.APIError, match="the upstream model stopped answering in time") as broken:
            seen.extend(c.choices[0].delta.content for c in stream)
        assert seen == ["Ana's "]  # what came before the break reached the caller
        assert broken.value.code == "freshguard_upstream_unavailable"


# -- the Responses API, the model list, run ids, retries and unknown paths ---------------------------


def tool_output_input(*outputs: str) -> Any:
    """A Responses input in which the model called a CRM tool once per output, and each call was answered."""
    items: list[Any] = [QUESTION]
    for i, output in enumerate(outputs):
        items.append({"type": "function_call", "call_id": f"call_{i}", "name": "crm_lookup", "arguments": "{}"})
        items.append({"type": "function_call_output", "call_id": f"call_{i}", "output": output})
    return items


def test_responses_tool_outputs_are_guarded_and_the_answer_names_its_run(gateway: Gateway, upstream: Upstream) -> None:
    fresh = json.dumps(FRESH)
    raw = gateway.client().responses.with_raw_response.create(
        model="gpt-4o", input=tool_output_input(fresh, json.dumps(STALE))
    )
    answer = raw.parse()
    assert answer.output_text == "seen 0 system messages"
    assert tool_texts(upstream.last) == [fresh, STALE_NOTICE]
    [run] = gateway.runs()
    assert raw.headers["x-freshguard-run-id"] == run["run_id"]
    assert [(c["model"], c["call_id"], c["extra"]) for c in run["model_calls"]] == [
        (MODEL_VERSION, "resp_1", {"integration": "gateway", "endpoint": "responses", "stream": False})
    ]


def test_a_streamed_response_is_relayed_and_linked_on_its_first_event(gateway: Gateway, upstream: Upstream) -> None:
    with gateway.client().responses.with_streaming_response.create(
        model="gpt-4o", input=tool_output_input(json.dumps(STALE)), stream=True
    ) as streamed:
        run_id = streamed.headers["x-freshguard-run-id"]
        events = [json.loads(line[5:]) for line in streamed.iter_lines() if line.startswith("data:")]
    assert [events[0]["type"], events[-1]["type"]] == ["response.created", "response.completed"]
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "seen 0 system messages"
    assert tool_texts(upstream.last) == [STALE_NOTICE]
    [run] = gateway.runs()
    assert run["run_id"] == run_id
    assert [(c["call_id"], c["extra"]["endpoint"], c["extra"]["stream"]) for c in run["model_calls"]] == [
        ("resp_1", "responses", True)
    ]


def test_a_responses_text_input_with_context_records_gets_the_context_first(
    gateway: Gateway, upstream: Upstream
) -> None:
    gateway.client().responses.create(
        model="gpt-4o", input="What is Ana's credit limit?", extra_body={"freshguard": {"records": [FRESH]}}
    )
    sent = upstream.last["input"]
    assert [item["role"] for item in sent] == ["system", "user"]
    assert "[customer C-1042 from salesforce" in sent[0]["content"]


def test_the_model_list_is_passed_through(gateway: Gateway, upstream: Upstream) -> None:
    assert [m.id for m in gateway.client().models.list()] == [MODEL_VERSION]
    assert upstream.headers[-1]["authorization"] == "Bearer sk-upstream"
    assert gateway.runs() == []


def test_every_answer_to_a_checked_request_names_its_run(gateway: Gateway) -> None:
    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=tool_call_messages(json.dumps(FRESH))
    )
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=tool_call_messages(json.dumps(FRESH)), stream=True
    ) as streamed:
        streamed_run = streamed.headers["x-freshguard-run-id"]
    unchecked = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=[QUESTION])
    upstream_error = httpx2.post(
        f"{gateway.openai_url}/chat/completions",
        json={"model": "refuse-me", "messages": tool_call_messages(json.dumps(FRESH))},
    )
    assert upstream_error.status_code == 400
    runs = {r["run_id"] for r in gateway.runs()}
    assert {raw.headers["x-freshguard-run-id"], streamed_run, upstream_error.headers["x-freshguard-run-id"]} == runs
    assert "x-freshguard-run-id" not in unchecked.headers


def test_an_upstream_that_refuses_the_gateways_key_is_not_retried(gateway: Gateway, upstream: Upstream) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client(max_retries=3).chat.completions.create(
            model="refuse-key", messages=tool_call_messages(json.dumps(FRESH))
        )
    assert caught.value.status_code == 502
    assert caught.value.code == "freshguard_upstream_auth"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.response.headers["x-freshguard-run-id"] == gateway.runs()[0]["run_id"]
    assert len(upstream.bodies) == 1  # asked once: a retry cannot fix the operator's key


def test_a_gateway_without_an_upstream_is_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for gateway in start(tmp_path, monkeypatch):
        with pytest.raises(openai.InternalServerError) as caught:
            gateway.client(max_retries=3).responses.create(model="m", input="hi")
        assert caught.value.code == "freshguard_no_upstream"
        assert caught.value.response.headers["x-should-retry"] == "false"


def test_a_path_the_gateway_does_not_serve_answers_in_openais_shape(gateway: Gateway, upstream: Upstream) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client(max_retries=3).embeddings.create(model="embed-test", input="hi")
    error = caught.value
    assert error.code == "freshguard_not_found"
    assert "does not serve /v1/openai/embeddings; it serves POST /v1/openai/chat/completions" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    wrong_method = httpx2.get(f"{gateway.openai_url}/chat/completions")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["message"] == "/v1/openai/chat/completions takes POST, not GET"
    assert upstream.bodies == []


@pytest.mark.parametrize(
    ("body", "param", "said"),
    [
        (b'{"model": "m", "input": 3}', "input", "input must be a text or a list of input items"),
        (b'{"input": "hi"}', "model", "model must name the model"),
        (b"[]", None, "a Responses API request"),
    ],
)
def test_a_bad_responses_request_is_a_400_in_openais_shape(
    gateway: Gateway, body: bytes, param: str | None, said: str
) -> None:
    answer = httpx2.post(f"{gateway.openai_url}/responses", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param
    assert said in answer.json()["error"]["message"]


def test_a_retried_model_call_with_an_idempotency_key_is_checked_and_forwarded_once(
    gateway: Gateway, upstream: Upstream
) -> None:
    client = gateway.client()
    asked = {"model": "gpt-4o", "messages": tool_call_messages(json.dumps(FRESH))}

    first = client.chat.completions.with_raw_response.create(**asked, extra_headers={"Idempotency-Key": "call-1"})
    again = client.chat.completions.with_raw_response.create(**asked, extra_headers={"Idempotency-Key": "call-1"})

    assert again.parse().id == first.parse().id
    assert again.headers["x-freshguard-run-id"] == first.headers["x-freshguard-run-id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(upstream.bodies) == 1
    assert len(gateway.runs()) == 1
