"""The guarded OpenAI client: the real `openai` client, talking to a real local HTTP stand-in for OpenAI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI

from guard import Guard, LineageStore, ServiceClient, StoreError
from guard.integrations.checking import BlockedContextError, Checker, LinkWarning
from guard.integrations.openai import GuardedAsyncOpenAI, GuardedOpenAI, guard_openai
from tests.integrations.conftest import LiveService, customer, run_async
from tests.integrations.upstream import MODEL_VERSION, Upstream, system_texts, tool_texts

PIPELINE = "support-bot"


@pytest.fixture
def lineage(checker: Checker, request: pytest.FixtureRequest) -> Iterator[LineageStore]:
    """The store the checker writes to: the guard's own, or the service's."""
    if isinstance(checker, Guard):
        assert checker.store is not None
        yield checker.store
        return
    live: LiveService = request.getfixturevalue("live_service")
    store = live.store()
    yield store
    store.close()


_MADE: list[OpenAI] = []


def openai_client(upstream: Upstream) -> OpenAI:
    """A real openai client of the stand-in upstream, closed after the test (see `_close_clients`)."""
    made = OpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0)
    _MADE.append(made)
    return made


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """No client's connection is left for the garbage collector to find in a later test."""
    yield
    while _MADE:
        _MADE.pop().close()


def calls(store: LineageStore, run_id: str) -> list[tuple[str, str | None, Any]]:
    run = store.get_run(run_id)
    assert run is not None
    return [(c["model"], c["call_id"], c["extra"]) for c in run["model_calls"]]


def test_chat_completions_see_only_the_allowed_records_and_the_call_is_linked(
    checker: Checker, lineage: LineageStore, upstream: Upstream, records: list[dict[str, Any]]
) -> None:
    client = guard_openai(openai_client(upstream), checker, pipeline=PIPELINE)
    assert isinstance(client, GuardedOpenAI)

    checked = client.chat.completions.create_checked(
        model="gpt-4o", records=records, messages=[{"role": "user", "content": "What is Ana's credit limit?"}]
    )

    assert checked.response.choices[0].message.content == "seen 1 system messages"
    [context] = system_texts(upstream.last)
    assert "Customer C-1042: Ana Silva" in context
    assert "[customer C-3003 from salesforce" in context
    assert "C-2001" not in context  # stale
    assert "9000" not in context  # the conflicting SAP copy
    assert upstream.last["messages"][-1] == {"role": "user", "content": "What is Ana's credit limit?"}
    assert checked.check is not None
    assert calls(lineage, checked.check.run_id) == [
        (MODEL_VERSION, "chatcmpl-1", {"endpoint": "chat.completions", "stream": False, "integration": "openai"})
    ]


def test_notices_tell_the_model_what_was_withheld(
    in_process: Guard, upstream: Upstream, records: list[dict[str, Any]]
) -> None:
    client = guard_openai(openai_client(upstream), in_process, pipeline=PIPELINE, include_notices=True)
    client.chat.completions.create(model="gpt-4o", records=records, messages=[{"role": "user", "content": "hi"}])
    [context] = system_texts(upstream.last)
    assert "- record withheld: customer C-2001 from sap (STALE: 3h 2m old, the limit is 1h)" in context
    assert "- record withheld: customer C-3003 from sap (CONFLICT: another copy is used)" in context
    assert "9000" not in context  # a notice never repeats the blocked copy's values
    assert "record withheld: customer C-3003 from sap" in context


def test_a_streamed_chat_is_passed_through_and_linked_on_its_first_chunk(
    checker: Checker, lineage: LineageStore, upstream: Upstream, records: list[dict[str, Any]]
) -> None:
    client = guard_openai(openai_client(upstream), checker, pipeline=PIPELINE)
    checked = client.chat.completions.create_checked(
        model="gpt-4o", records=records, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert checked.check is not None
    with checked.response as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.strip() == "seen 1 system messages"
    assert calls(lineage, checked.check.run_id) == [
        (MODEL_VERSION, "chatcmpl-1", {"endpoint": "chat.completions", "stream": True, "integration": "openai"})
    ]


@pytest.mark.parametrize(
    "given",
    ["What is Ana's credit limit?", [{"role": "user", "content": "What is Ana's credit limit?"}]],
    ids=["text-input", "item-input"],
)
def test_responses_get_the_context_first_and_are_linked(
    checker: Checker, lineage: LineageStore, upstream: Upstream, records: list[dict[str, Any]], given: Any
) -> None:
    client = guard_openai(openai_client(upstream), checker, pipeline=PIPELINE)
    checked = client.responses.create_checked(model="gpt-4o", records=records, input=given)

    assert checked.response.output_text == "seen 1 system messages"
    sent = upstream.last["input"]
    assert [item["role"] for item in sent] == ["system", "user"]
    assert sent[1]["content"] == "What is Ana's credit limit?"
    assert checked.check is not None
    assert calls(lineage, checked.check.run_id) == [
        (MODEL_VERSION, "resp_1", {"endpoint": "responses", "stream": False, "integration": "openai"})
    ]


def test_the_async_client_guards_links_and_streams_the_same(
    checker: Checker, lineage: LineageStore, upstream: Upstream, records: list[dict[str, Any]]
) -> None:
    async def run() -> tuple[str, str, str, str]:
        client = guard_openai(
            AsyncOpenAI(base_url=upstream.base_url, api_key="sk", max_retries=0), checker, pipeline=PIPELINE
        )
        assert isinstance(client, GuardedAsyncOpenAI)
        try:
            plain = await client.chat.completions.create_checked(
                model="gpt-4o", records=records, messages=[{"role": "user", "content": "hi"}]
            )
            streamed = await client.chat.completions.create_checked(
                model="gpt-4o", records=records, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async with streamed.response as stream:
                text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            answer = await client.responses.create(model="gpt-4o", records=records, input="hi")
        finally:
            await client.client.close()
            if isinstance(checker, ServiceClient):
                await checker.aclose()
        assert plain.check is not None
        assert streamed.check is not None
        return text, answer.output_text, plain.check.run_id, streamed.check.run_id

    text, output, plain_run, streamed_run = run_async(run)
    assert text.strip() == output == "seen 1 system messages"
    assert [c[1] for c in calls(lineage, plain_run)] == ["chatcmpl-1"]
    assert calls(lineage, streamed_run) == [
        (MODEL_VERSION, "chatcmpl-2", {"endpoint": "chat.completions", "stream": True, "integration": "openai"})
    ]


def test_below_the_floor_the_model_is_not_called(in_process: Guard, upstream: Upstream) -> None:
    stale = [customer("old", "C-1", "sap", timedelta(hours=5))]
    client = guard_openai(openai_client(upstream), in_process, pipeline=PIPELINE, min_allowed=1)
    with pytest.raises(BlockedContextError, match="below the floor of 1: old: customer C-1 from sap is 5h old"):
        client.chat.completions.create(model="gpt-4o", records=stale, messages=[{"role": "user", "content": "hi"}])
    assert upstream.bodies == []


def test_a_call_without_records_is_sent_as_is_and_checks_nothing(in_process: Guard, upstream: Upstream) -> None:
    client = guard_openai(openai_client(upstream), in_process, pipeline=PIPELINE)
    checked = client.chat.completions.create_checked(
        model="gpt-4o", records=[], messages=[{"role": "user", "content": "hi"}]
    )
    assert checked.check is None
    assert upstream.last["messages"] == [{"role": "user", "content": "hi"}]
    assert in_process.store is not None
    assert in_process.store.list_runs() == []


def test_a_model_that_fails_is_not_linked(in_process: Guard, upstream: Upstream, records: list[dict[str, Any]]) -> None:
    import openai

    client = guard_openai(openai_client(upstream), in_process, pipeline=PIPELINE)
    with pytest.raises(openai.BadRequestError, match="the stand-in refuses"):
        client.chat.completions.create(model="refuse-me", records=records, messages=[{"role": "user", "content": "hi"}])
    assert in_process.store is not None
    [run] = in_process.store.list_runs()
    assert calls(in_process.store, run["run_id"]) == []


def test_only_openai_clients_are_wrapped(in_process: Guard) -> None:
    with pytest.raises(TypeError, match=r"wraps an openai.OpenAI or openai.AsyncOpenAI client, not str"):
        guard_openai("sk-test", in_process, pipeline=PIPELINE)  # type: ignore[call-overload]


def test_a_record_that_is_not_a_mapping_is_decided_not_crashed_on(
    checker: Checker, upstream: Upstream, records: list[dict[str, Any]]
) -> None:
    client = guard_openai(openai_client(upstream), checker, pipeline=PIPELINE, include_notices=True)
    checked = client.chat.completions.create_checked(
        model="gpt-4o", records=[records[0], "page 2 of 2", None], messages=[{"role": "user", "content": "hi"}]
    )
    assert checked.check is not None
    assert [(d.action.value, [c.value for c in d.codes]) for d in checked.check.decisions] == [
        ("allow", []),
        ("block", ["INVALID_RECORD"]),
        ("block", ["INVALID_RECORD"]),
    ]
    [context] = system_texts(upstream.last)
    assert "record withheld: record #1 (INVALID_RECORD: not a valid record envelope)" in context


def _failing_links(checker: Checker, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise StoreError("the lineage store is unreachable")

    if isinstance(checker, Guard):
        assert checker.store is not None
        monkeypatch.setattr(checker.store, "link_consumption", fail)
    else:
        monkeypatch.setattr(checker, "link_consumption", fail)
        monkeypatch.setattr(checker, "alink_consumption", fail)


def test_an_answer_whose_link_fails_is_returned_with_a_warning(
    checker: Checker, upstream: Upstream, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_links(checker, monkeypatch)
    client = guard_openai(openai_client(upstream), checker, pipeline=PIPELINE)
    with pytest.warns(LinkWarning, match="could not be linked"):
        answer = client.chat.completions.create(
            model="gpt-4o", records=records, messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.id == "chatcmpl-1"
    with pytest.warns(LinkWarning):
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o", records=records, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    assert chunks
    assert len(upstream.bodies) == 2  # each question asked (and paid for) once


def test_the_async_client_returns_an_answer_whose_link_fails(
    in_process: Guard, upstream: Upstream, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_links(in_process, monkeypatch)

    async def main() -> str:
        client = guard_openai(
            AsyncOpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0), in_process, pipeline=PIPELINE
        )
        try:
            answer = await client.chat.completions.create(
                model="gpt-4o", records=records, messages=[{"role": "user", "content": "hi"}]
            )
        finally:
            await client.client.close()
        return str(answer.id)

    with pytest.warns(LinkWarning):
        assert run_async(main) == "chatcmpl-1"


# -- tool results: guarded exactly as the gateway guards them ------------------------------------------

STALE_NOTICE = "record withheld: customer C-2001 from sap (STALE: 3h 2m old, the limit is 1h)"
QUESTION = {"role": "user", "content": "What is the credit limit of C-2001?"}


def stale() -> dict[str, Any]:
    return customer("cust-stale", "C-2001", "sap", timedelta(hours=3, minutes=2, seconds=30), name="Bruno Costa")


def fresh() -> dict[str, Any]:
    return customer("cust-fresh", "C-1042", "salesforce", timedelta(minutes=5))


def chat_with_tool_results(*contents: Any, role: str = "tool") -> list[Any]:
    """A conversation in which the assistant called a CRM tool once per content, and each call was answered."""
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": "crm_lookup", "arguments": "{}"}}
             for i in range(len(contents))]  # fmt: skip
    answers = [{"role": role, "tool_call_id": f"call_{i}", "content": c} for i, c in enumerate(contents)]
    if role == "function":
        answers = [{"role": "function", "name": "crm_lookup", "content": c} for c in contents]
    return [QUESTION, {"role": "assistant", "content": None, "tool_calls": calls}, *answers]


def responses_with_tool_outputs(*outputs: Any) -> list[Any]:
    """A Responses input in which the model called a CRM tool once per output, and each call was answered."""
    items: list[Any] = [QUESTION]
    for i, output in enumerate(outputs):
        items.append({"type": "function_call", "call_id": f"call_{i}", "name": "crm_lookup", "arguments": "{}"})
        items.append({"type": "function_call_output", "call_id": f"call_{i}", "output": output})
    return items


@pytest.mark.parametrize("role", ["tool", "function"])
def test_a_stale_tool_result_never_reaches_the_model(
    checker: Checker, lineage: LineageStore, upstream: Upstream, role: str
) -> None:
    """The issue's case: `records=[]` and a tool message holding a 3-hour-old SAP record."""
    client = guard_openai(openai_client(upstream), checker, pipeline=PIPELINE)
    allowed = json.dumps(fresh())
    messages = chat_with_tool_results(allowed, json.dumps(stale()), role=role)

    checked = client.chat.completions.create_checked(model="gpt-4o", records=[], messages=messages)

    assert tool_texts(upstream.last) == [allowed, STALE_NOTICE]
    assert "Bruno Costa" not in json.dumps(upstream.last)
    assert checked.check is not None
    assert [d.action.value for d in checked.check.decisions] == ["allow", "block"]
    assert calls(lineage, checked.check.run_id) == [
        (MODEL_VERSION, "chatcmpl-1", {"endpoint": "chat.completions", "stream": False, "integration": "openai"})
    ]


def test_records_are_optional_and_messages_without_records_go_as_they_are(
    in_process: Guard, upstream: Upstream
) -> None:
    client = guard_openai(openai_client(upstream), in_process, pipeline=PIPELINE)
    messages = chat_with_tool_results("the weather is fine")
    answer = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert answer.id == "chatcmpl-1"
    assert upstream.last["messages"] == messages
    assert in_process.store is not None
    assert in_process.store.list_runs() == []


def test_tool_records_and_context_records_are_one_check(in_process: Guard, upstream: Upstream) -> None:
    client = guard_openai(openai_client(upstream), in_process, pipeline=PIPELINE, include_notices=True)
    checked = client.chat.completions.create_checked(
        model="gpt-4o", records=[{**fresh(), "id": "ctx-1"}], messages=chat_with_tool_results(json.dumps([stale()]))
    )
    assert checked.check is not None
    assert [(d.id, d.action.value) for d in checked.check.decisions] == [("cust-stale", "block"), ("ctx-1", "allow")]
    [context] = system_texts(upstream.last)
    assert "[customer C-1042 from salesforce" in context


@pytest.mark.parametrize(
    ("content", "sent"),
    [
        (lambda: json.dumps(stale()) + "\nEnd of results", lambda text: text.startswith("tool result withheld: ")),
        (lambda: [{"type": "text", "text": json.dumps(stale())}], lambda parts: parts[0]["text"] == STALE_NOTICE),
        (lambda: json.dumps({"results": [fresh(), stale()], "next": None}),
         lambda text: [json.loads(text)["results"][1], json.loads(text)["next"]] == [STALE_NOTICE, None]),
    ],
    ids=["unreadable-withheld-whole", "text-parts", "wrapped-list"],
)  # fmt: skip
def test_tool_results_are_read_fail_closed_like_the_gateway(
    in_process: Guard, upstream: Upstream, content: Any, sent: Any
) -> None:
    client = guard_openai(openai_client(upstream), in_process, pipeline=PIPELINE)
    client.chat.completions.create(model="gpt-4o", messages=chat_with_tool_results(content()))
    [said] = tool_texts(upstream.last)
    assert sent(said)
    assert "Bruno Costa" not in json.dumps(upstream.last)


def test_responses_function_call_outputs_are_guarded(
    checker: Checker, lineage: LineageStore, upstream: Upstream
) -> None:
    client = guard_openai(openai_client(upstream), checker, pipeline=PIPELINE)
    parts = [{"type": "input_text", "text": json.dumps({**stale(), "id": "cust-stale-2"})}]
    allowed = json.dumps(fresh())
    checked = client.responses.create_checked(
        model="gpt-4o", input=responses_with_tool_outputs(json.dumps(stale()), allowed, parts)
    )
    assert tool_texts(upstream.last) == [
        STALE_NOTICE,
        allowed,
        [{"type": "input_text", "text": STALE_NOTICE}],
    ]
    assert checked.response.output_text == "seen 0 system messages"
    assert checked.check is not None
    assert calls(lineage, checked.check.run_id) == [
        (MODEL_VERSION, "resp_1", {"endpoint": "responses", "stream": False, "integration": "openai"})
    ]


def test_streams_are_guarded_and_linked(checker: Checker, lineage: LineageStore, upstream: Upstream) -> None:
    client = guard_openai(openai_client(upstream), checker, pipeline=PIPELINE)
    chat = client.chat.completions.create_checked(
        model="gpt-4o", messages=chat_with_tool_results(json.dumps(stale())), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chat.response if c.choices)
    assert text.strip() == "seen 0 system messages"
    assert tool_texts(upstream.last) == [STALE_NOTICE]
    events = list(client.responses.create(model="gpt-4o", input=responses_with_tool_outputs(json.dumps(stale())),
                                          stream=True))  # fmt: skip
    assert events[-1].type == "response.completed"
    assert tool_texts(upstream.last) == [STALE_NOTICE]
    assert chat.check is not None
    assert calls(lineage, chat.check.run_id) == [
        (MODEL_VERSION, "chatcmpl-1", {"endpoint": "chat.completions", "stream": True, "integration": "openai"})
    ]
    [responses_run] = [r["run_id"] for r in lineage.list_runs() if r["run_id"] != chat.check.run_id]
    assert calls(lineage, responses_run) == [
        (MODEL_VERSION, "resp_2", {"endpoint": "responses", "stream": True, "integration": "openai"})
    ]


def test_the_async_client_guards_tool_results_sent_streamed_and_with_helpers(
    in_process: Guard, upstream: Upstream
) -> None:
    async def main() -> list[Any]:
        client = guard_openai(
            AsyncOpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0), in_process, pipeline=PIPELINE
        )
        messages = chat_with_tool_results(json.dumps(stale()))
        said = []
        async with client:
            await client.chat.completions.create(model="gpt-4o", messages=messages)
            said += tool_texts(upstream.last)
            stream = await client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
            assert [c async for c in stream]
            said += tool_texts(upstream.last)
            await client.responses.create(model="gpt-4o", input=responses_with_tool_outputs(json.dumps(stale())))
            said += tool_texts(upstream.last)
            async with client.chat.completions.stream(model="gpt-4o", messages=messages) as helper:
                assert (await helper.get_final_completion()).id == "chatcmpl-4"
            said += tool_texts(upstream.last)
            async with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=messages) as raw:
                assert (await raw.parse()).id == "chatcmpl-5"
            said += tool_texts(upstream.last)
            raw_answer = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
            assert raw_answer.parse().id == "chatcmpl-6"
            said += tool_texts(upstream.last)
        return said

    assert run_async(main) == [STALE_NOTICE] * 6
    assert in_process.store is not None
    linked = sorted(c[1] or "" for r in in_process.store.list_runs() for c in calls(in_process.store, r["run_id"]))
    assert linked == ["", "chatcmpl-1", "chatcmpl-2", "chatcmpl-4", "chatcmpl-6", "resp_3"]


def test_every_other_part_of_the_client_passes_through(in_process: Guard, upstream: Upstream) -> None:
    client = guard_openai(openai_client(upstream), in_process, pipeline=PIPELINE)
    assert [m.id for m in client.models.list()] == [MODEL_VERSION]
    assert client.embeddings.create(model="embed-test", input="hi").data[0].embedding == [0.5, 0.25]
    assert client.api_key == "sk-test"
    assert client.chat.completions.messages is client.client.chat.completions.messages
    messages = chat_with_tool_results(json.dumps(stale()))

    tuned = client.with_options(timeout=5.0, max_retries=0)
    assert isinstance(tuned, GuardedOpenAI)
    tuned.chat.completions.create(model="gpt-4o", messages=messages)
    assert tool_texts(upstream.last) == [STALE_NOTICE]

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.parse().id == "chatcmpl-3"
    assert tool_texts(upstream.last) == [STALE_NOTICE]

    parsed = client.chat.completions.parse(model="gpt-4o", messages=messages)
    assert parsed.choices[0].message.content == "seen 0 system messages"
    assert tool_texts(upstream.last) == [STALE_NOTICE]

    with client.chat.completions.stream(model="gpt-4o", messages=messages) as helper:
        assert [e.type for e in helper if e.type == "content.done"] == ["content.done"]
    assert tool_texts(upstream.last) == [STALE_NOTICE]

    client.beta.chat.completions.parse(model="gpt-4o", messages=messages)
    assert tool_texts(upstream.last) == [STALE_NOTICE]
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=messages) as streamed:
        assert streamed.parse().id == "chatcmpl-7"
    assert tool_texts(upstream.last) == [STALE_NOTICE]

    assert in_process.store is not None
    runs = in_process.store.list_runs()
    assert len(runs) == 6  # one check per model call, each linked to its call
    assert all(calls(in_process.store, r["run_id"]) for r in runs)
