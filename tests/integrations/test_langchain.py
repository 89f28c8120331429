"""GuardedRetriever, the guard step and FreshguardHandler, with real langchain-core parts.

The retriever under guard is an `InMemoryVectorStore` retriever over deterministic fake embeddings; the
chain ends in langchain-core's `FakeListChatModel`. No part of LangChain is mocked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import ValidationError

from guard import Guard, ServiceClient
from guard.integrations.checking import BlockedContextError, Checker
from guard.integrations.langchain import (
    BLOCKED_EVENT,
    METADATA_KEY,
    FreshguardCompressor,
    FreshguardHandler,
    GuardedRetriever,
    document_envelope,
    guard_documents,
)
from tests.integrations.conftest import EXPECTED, LiveService, customer, run_async

PIPELINE = "support-rag"


def as_document(record: dict[str, Any], renames: dict[str, str] | None = None) -> Document:
    """A document as an ingestion job would store it: the content as text, the rest as metadata."""
    metadata = {(renames or {}).get(k, k): v for k, v in record.items() if k not in ("id", "content")}
    return Document(page_content=record["content"], metadata=metadata, id=record["id"])


def vector_retriever(documents: list[Document]) -> BaseRetriever:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
    store.add_documents(documents)
    return store.as_retriever(search_kwargs={"k": len(documents)})


def decided(documents: list[Document]) -> list[tuple[str | None, str]]:
    return sorted((d.id, d.metadata[METADATA_KEY]["action"]) for d in documents)


def test_only_allowed_documents_come_back_with_their_decision(checker: Checker, records: list[dict[str, Any]]) -> None:
    handler = FreshguardHandler()
    guarded = GuardedRetriever(
        retriever=vector_retriever([as_document(r) for r in records]), checker=checker, pipeline=PIPELINE
    )

    found = guarded.invoke("credit limit of Ana", config={"callbacks": [handler]})

    assert decided(found) == [("cust-fresh", "allow"), ("cust-owner", "allow")]
    run_ids = {d.metadata[METADATA_KEY]["run_id"] for d in found}
    assert len(run_ids) == 1
    assert found[0].metadata[METADATA_KEY]["policy"] == {"name": "support-assistant", "version": 1}
    blocked = {b.document.id: [r.code.value for r in b.decision.reasons] for b in handler.blocked}
    assert blocked == {"cust-stale": ["STALE"], "cust-sap-copy": ["CONFLICT"]}
    assert handler.run_ids == list(run_ids)
    stale = next(b for b in handler.blocked if b.document.id == "cust-stale")
    assert stale.reasons[0].startswith("customer C-2001 from sap is 3h 2m old")


def test_async_retrieval_decides_as_the_sync_one(checker: Checker, records: list[dict[str, Any]]) -> None:
    handler = FreshguardHandler()
    guarded = GuardedRetriever(
        retriever=vector_retriever([as_document(r) for r in records]), checker=checker, pipeline=PIPELINE
    )

    async def retrieve() -> list[Document]:
        try:
            return await guarded.ainvoke("credit limit of Ana", config={"callbacks": [handler]})
        finally:
            if isinstance(checker, ServiceClient):
                await checker.aclose()  # its connections belong to this event loop

    found = run_async(retrieve)

    assert decided(found) == [("cust-fresh", "allow"), ("cust-owner", "allow")]
    assert sorted(b.document.id or "" for b in handler.blocked) == ["cust-sap-copy", "cust-stale"]


def test_in_process_and_service_decide_the_same(
    in_process: Guard, service_client: ServiceClient, records: list[dict[str, Any]]
) -> None:
    documents = [as_document(r) for r in records]
    outcomes: list[list[Any]] = []
    for checker in (in_process, service_client):
        screened = GuardedRetriever(retriever=vector_retriever(documents), checker=checker, pipeline=PIPELINE).screen(
            documents
        )
        assert screened.result is not None
        outcomes.append([(d.id, d.action.value, [c.value for c in d.codes]) for d in screened.result.decisions])
        outcomes.append([[r.code.value for r in b.decision.reasons] for b in screened.blocked])
    assert outcomes[0] == [(i, a, c) for i, a, c in EXPECTED]
    assert outcomes[0] == outcomes[2]
    assert outcomes[1] == outcomes[3]


@pytest.mark.parametrize(
    ("ages_h", "min_allowed", "raises"),
    [
        ((4, 5), 1, True),  # every document blocked: the floor of one trips
        ((4, 5), 0, False),  # no floor: the model gets nothing, by choice
        ((0, 4), 1, False),  # one allowed meets a floor of one
        ((0, 4), 2, True),  # one allowed is below a floor of two
        ((0, 0), 3, False),  # nothing blocked: fewer found than the floor is the retriever's business
    ],
)
def test_the_floor_raises_when_blocking_leaves_too_little(
    in_process: Guard, ages_h: tuple[int, int], min_allowed: int, raises: bool
) -> None:
    from datetime import timedelta

    documents = [
        as_document(customer(f"doc-{i}", f"C-{i}", "sap", timedelta(hours=age, minutes=5)))
        for i, age in enumerate(ages_h)
    ]
    guarded = GuardedRetriever(
        retriever=vector_retriever(documents), checker=in_process, pipeline=PIPELINE, min_allowed=min_allowed
    )
    if not raises:
        guarded.invoke("anything")
        return
    with pytest.raises(BlockedContextError) as caught:
        guarded.invoke("anything")
    message = str(caught.value)
    assert f"below the floor of {min_allowed}" in message
    assert "from sap is 4h 5m old; the limit agreed with sales-ops is 1h" in message
    assert "lower min_allowed" in message
    assert caught.value.result.run_id in message


def test_a_custom_mapping_reads_other_metadata_names(in_process: Guard, records: list[dict[str, Any]]) -> None:
    renames = {"key": "customer_id", "source": "system", "observed_at": "synced"}
    documents = [as_document(r, renames) for r in records]
    guarded = GuardedRetriever(
        retriever=vector_retriever(documents),
        checker=in_process,
        pipeline=PIPELINE,
        mapping={"key": "customer_id", "source": "system", "observed_at": "synced"},
    )
    assert decided(guarded.invoke("q")) == [("cust-fresh", "allow"), ("cust-owner", "allow")]


def test_a_mapping_function_builds_members_from_the_document(in_process: Guard) -> None:
    from datetime import UTC, datetime, timedelta

    document = Document(
        page_content="Customer C-1042: Ana Silva.",
        metadata={"crm_id": "C-1042", "read_at": datetime.now(UTC) - timedelta(minutes=3)},
        id="a",
    )

    def mapping(doc: Document) -> dict[str, Any]:
        return {"object": "customer", "key": doc.metadata["crm_id"], "source": "salesforce",
                "observed_at": doc.metadata["read_at"],
                "fields": {"email": "ana@example.com", "name": "Ana Silva"}}  # fmt: skip

    envelope = document_envelope(document, 0, mapping)
    assert envelope["observed_at"].endswith("+00:00")  # a datetime becomes ISO 8601 text
    guarded = GuardedRetriever(
        retriever=vector_retriever([document]), checker=in_process, pipeline=PIPELINE, mapping=mapping
    )
    assert decided(guarded.invoke("q")) == [("a", "allow")]


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"mapping": {"customer": "customer_id"}}, "customer, which are not envelope members"),
        ({"mapping": ["key"]}, "mapping must be {envelope member: metadata key}"),
        ({"checker": "http://localhost:8000"}, "checker must be a guard.Guard"),
        ({"min_allowed": -1}, "greater than or equal to 0"),
        ({"pipeline": ""}, "at least 1 character"),
    ],
)
def test_a_misconfigured_retriever_is_refused_in_words(in_process: Guard, overrides: dict[str, Any], said: str) -> None:
    options: dict[str, Any] = {
        "retriever": vector_retriever([]),
        "checker": in_process,
        "pipeline": PIPELINE,
        **overrides,
    }
    with pytest.raises(ValidationError, match=said.replace("{", r"\{").replace("}", r"\}")):
        GuardedRetriever(**options)


def format_docs(documents: list[Document]) -> str:
    return "\n".join(d.page_content for d in documents)


def rag_chain(
    checker: Checker, documents: list[Document], answers: list[str], step: Callable[..., Any] | None = None
) -> Any:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from this context:\n{context}"), ("human", "{question}")]
    )
    model = FakeListChatModel(responses=answers)
    retrieval = vector_retriever(documents) | (step or guard_documents)(checker, pipeline=PIPELINE) | format_docs
    return {"context": retrieval, "question": RunnablePassthrough()} | prompt | model | StrOutputParser()


def test_a_chain_with_a_guard_step_sends_only_allowed_context_and_links_the_model_call(
    checker: Checker, records: list[dict[str, Any]], live_service: LiveService, in_process: Guard
) -> None:
    handler = FreshguardHandler(checker)
    chain = rag_chain(checker, [as_document(r) for r in records], ["Ana's limit is 5000 EUR."])

    answer = chain.invoke("What is Ana's credit limit?", config={"callbacks": [handler]})

    assert answer == "Ana's limit is 5000 EUR."
    assert sorted(b.document.id or "" for b in handler.blocked) == ["cust-sap-copy", "cust-stale"]
    [run_id] = handler.run_ids
    [(linked_run, model, call_id)] = handler.linked
    assert linked_run == run_id
    assert call_id
    store = in_process.store if isinstance(checker, Guard) else live_service.store()
    assert store is not None
    run = store.get_run(run_id)
    assert run is not None
    [call] = run["model_calls"]
    assert (call["model"], call["call_id"], call["extra"]) == (model, call_id, {"integration": "langchain"})


def test_a_guarded_retriever_in_a_chain_links_runs_that_blocked_nothing(in_process: Guard) -> None:
    from datetime import timedelta

    documents = [as_document(customer("only", "C-1042", "salesforce", timedelta(minutes=2)))]
    guarded = GuardedRetriever(retriever=vector_retriever(documents), checker=in_process, pipeline=PIPELINE)
    prompt = ChatPromptTemplate.from_messages([("system", "{context}"), ("human", "{question}")])
    chain = (
        {"context": guarded | format_docs, "question": RunnablePassthrough()}
        | prompt
        | FakeListChatModel(responses=["ok"])
    )
    handler = FreshguardHandler(in_process)

    chain.invoke("hi", config={"callbacks": [handler]})

    assert handler.blocked == []
    [(run_id, _model, _call)] = handler.linked
    assert in_process.store is not None
    run = in_process.store.get_run(run_id)
    assert run is not None
    assert [c["extra"] for c in run["model_calls"]] == [{"integration": "langchain"}]


def test_blocked_documents_show_in_the_event_stream(in_process: Guard, records: list[dict[str, Any]]) -> None:
    chain = vector_retriever([as_document(r) for r in records]) | guard_documents(in_process, pipeline=PIPELINE)

    async def events() -> list[Any]:
        return [e async for e in chain.astream_events("q", version="v2") if e["event"] == "on_custom_event"]

    [event] = run_async(events)
    assert event["name"] == BLOCKED_EVENT
    assert sorted(b["id"] for b in event["data"]["blocked"]) == ["cust-sap-copy", "cust-stale"]
    assert (event["data"]["checked"], event["data"]["allowed"]) == (4, 2)


def test_nothing_found_is_not_checked(in_process: Guard) -> None:
    guarded = GuardedRetriever(retriever=vector_retriever([]), checker=in_process, pipeline=PIPELINE, min_allowed=1)
    assert guarded.invoke("q") == []
    assert in_process.store is not None
    assert in_process.store.list_runs() == []


# -- LangChain's own shapes: base_retriever=, a document compressor, documents without an envelope ----------


def test_blocked_context_error_comes_from_the_integration_itself() -> None:
    import guard.integrations.langchain as integration

    assert integration.BlockedContextError is BlockedContextError
    assert "BlockedContextError" in integration.__all__


def test_base_retriever_is_taken_as_langchains_wrappers_take_it(
    in_process: Guard, records: list[dict[str, Any]]
) -> None:
    base = vector_retriever([as_document(r) for r in records])
    guarded = GuardedRetriever(base_retriever=base, checker=in_process, pipeline=PIPELINE)
    assert guarded.base_retriever is base
    assert decided(guarded.invoke("credit limit")) == [("cust-fresh", "allow"), ("cust-owner", "allow")]
    with pytest.raises(ValidationError, match=r"base_retriever= \(or retriever=\), not both or neither"):
        GuardedRetriever(base_retriever=base, retriever=base, checker=in_process, pipeline=PIPELINE)


def test_a_compressor_guards_a_contextual_compression_retriever(
    checker: Checker, records: list[dict[str, Any]]
) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever

    handler = FreshguardHandler()
    compressor = FreshguardCompressor(checker=checker, pipeline=PIPELINE)
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=vector_retriever([as_document(r) for r in records])
    )

    found = retriever.invoke("credit limit of Ana", config={"callbacks": [handler]})

    assert decided(found) == [("cust-fresh", "allow"), ("cust-owner", "allow")]
    assert sorted(b.document.id or "" for b in handler.blocked) == ["cust-sap-copy", "cust-stale"]
    assert handler.run_ids == [found[0].metadata[METADATA_KEY]["run_id"]]

    async def compress() -> list[Document]:
        try:
            return await retriever.ainvoke("credit limit of Ana")
        finally:
            if isinstance(checker, ServiceClient):
                await checker.aclose()

    assert decided(run_async(compress)) == [("cust-fresh", "allow"), ("cust-owner", "allow")]


def test_the_compressors_floor_raises(in_process: Guard, records: list[dict[str, Any]]) -> None:
    compressor = FreshguardCompressor(checker=in_process, pipeline=PIPELINE, min_allowed=3)
    with pytest.raises(BlockedContextError, match="below the floor of 3"):
        compressor.compress_documents([as_document(r) for r in records], "credit limit")


def test_a_document_without_an_envelope_is_withheld_with_a_reason_and_one_warning(
    in_process: Guard, records: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    plain = [Document(page_content="Our refund policy: 30 days.", id="kb-1", metadata={"title": "Refunds"})]
    handler = FreshguardHandler()
    guarded = GuardedRetriever(
        base_retriever=vector_retriever([as_document(records[0]), *plain]), checker=in_process, pipeline=PIPELINE
    )

    found = guarded.invoke("refunds", config={"callbacks": [handler]})
    guarded.invoke("refunds again", config={"callbacks": [handler]})

    assert decided(found) == [("cust-fresh", "allow")]
    [reasons, _] = [b.reasons for b in handler.blocked]
    assert reasons == [
        "document kb-1 carries no record envelope in its metadata (no object, key or source), so Freshguard cannot "
        "tell what it is about, where it came from or how old it is; add those members to the metadata when the "
        "documents are loaded, or name the metadata keys that hold them with mapping="
    ]
    warned = [r for r in caplog.records if "carry no record envelope" in r.getMessage()]
    assert len(warned) == 1  # once per retriever, not once per query
    assert "1 retrieved documents for pipeline support-rag" in warned[0].getMessage()
    assert "kb-1" in warned[0].getMessage()
