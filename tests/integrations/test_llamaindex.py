"""FreshguardPostprocessor with real llama-index-core parts: a `VectorStoreIndex` over `MockEmbedding`, queried
through a query engine answering with `MockLLM`. No part of LlamaIndex is mocked beyond its own test models.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import Settings as LlamaSettings
from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import MetadataMode, TextNode
from llama_index_instrumentation import get_dispatcher
from pydantic import ValidationError

from guard import Guard, ServiceClient
from guard.integrations.checking import Checker
from guard.integrations.llamaindex import (
    METADATA_KEY,
    BlockedContextError,
    FreshguardEventHandler,
    FreshguardPostprocessor,
)
from tests.integrations.conftest import run_async

PIPELINE = "support-rag"


def as_node(record: dict[str, Any]) -> TextNode:
    """A node as an ingestion pipeline would store it: the content as text, the rest as metadata."""
    metadata = {k: v for k, v in record.items() if k not in ("id", "content")}
    return TextNode(text=record["content"], metadata=metadata, id_=record["id"])


def index_of(nodes: list[TextNode]) -> VectorStoreIndex:
    return VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))


@pytest.fixture
def handler() -> Iterator[FreshguardEventHandler]:
    """A handler on LlamaIndex's root dispatcher, removed after the test."""
    collected = FreshguardEventHandler()
    root = get_dispatcher()
    root.add_event_handler(collected)
    try:
        yield collected
    finally:
        root.event_handlers.remove(collected)


@pytest.fixture(autouse=True)
def _no_default_models() -> None:
    """Nothing reaches for OpenAI's models: the tests name their own."""
    LlamaSettings.llm = MockLLM()
    LlamaSettings.embed_model = MockEmbedding(embed_dim=8)


def kept(nodes: list[Any]) -> list[tuple[str, str]]:
    return sorted((n.node.node_id, n.node.metadata[METADATA_KEY]["action"]) for n in nodes)


def test_a_query_engine_answers_from_the_allowed_nodes_only(
    checker: Checker, records: list[dict[str, Any]], handler: FreshguardEventHandler
) -> None:
    postprocessor = FreshguardPostprocessor(checker=checker, pipeline=PIPELINE)
    engine = index_of([as_node(r) for r in records]).as_query_engine(
        similarity_top_k=len(records), node_postprocessors=[postprocessor]
    )

    answer = engine.query("What is Ana's credit limit?")

    assert kept(answer.source_nodes) == [("cust-fresh", "allow"), ("cust-owner", "allow")]
    verdict = answer.source_nodes[0].node.metadata[METADATA_KEY]
    assert verdict["policy"] == {"name": "support-assistant", "version": 1}
    assert "Bruno Costa" not in str(answer)  # MockLLM repeats its prompt: the stale node never reached it
    assert METADATA_KEY not in answer.source_nodes[0].node.get_content(metadata_mode=MetadataMode.LLM)
    blocked = {b.node.node.node_id: [r.code.value for r in b.decision.reasons] for b in handler.blocked}
    assert blocked == {"cust-stale": ["STALE"], "cust-sap-copy": ["CONFLICT"]}
    assert handler.run_ids == [verdict["run_id"]]
    stale = next(b for b in handler.blocked if b.node.node.node_id == "cust-stale")
    assert stale.reasons[0].startswith("customer C-2001 from sap is 3h 2m old")


def test_async_queries_decide_as_sync_ones(checker: Checker, records: list[dict[str, Any]]) -> None:
    postprocessor = FreshguardPostprocessor(checker=checker, pipeline=PIPELINE)
    engine = index_of([as_node(r) for r in records]).as_query_engine(
        similarity_top_k=len(records), node_postprocessors=[postprocessor]
    )

    async def ask() -> Any:
        try:
            return await engine.aquery("What is Ana's credit limit?")
        finally:
            if isinstance(checker, ServiceClient):
                await checker.aclose()  # its connections belong to this event loop

    assert kept(run_async(ask).source_nodes) == [("cust-fresh", "allow"), ("cust-owner", "allow")]


def test_a_retriever_and_the_postprocessor_alone(in_process: Guard, records: list[dict[str, Any]]) -> None:
    retriever = index_of([as_node(r) for r in records]).as_retriever(similarity_top_k=len(records))
    postprocessor = FreshguardPostprocessor(checker=in_process, pipeline=PIPELINE)
    nodes = postprocessor.postprocess_nodes(retriever.retrieve("credit limit"), query_str="credit limit")
    assert kept(nodes) == [("cust-fresh", "allow"), ("cust-owner", "allow")]
    assert METADATA_KEY not in retriever.retrieve("credit limit")[0].node.metadata  # the index's nodes untouched


def test_the_floor_raises_before_the_model_is_asked(in_process: Guard, records: list[dict[str, Any]]) -> None:
    postprocessor = FreshguardPostprocessor(checker=in_process, pipeline=PIPELINE, min_allowed=3)
    engine = index_of([as_node(r) for r in records]).as_query_engine(
        similarity_top_k=len(records), node_postprocessors=[postprocessor]
    )
    with pytest.raises(BlockedContextError, match=r"2 of 4 nodes .* below the floor of 3"):
        engine.query("credit limit")


def test_a_node_without_an_envelope_is_withheld_with_a_reason_and_one_warning(
    in_process: Guard, records: list[dict[str, Any]], handler: FreshguardEventHandler, caplog: pytest.LogCaptureFixture
) -> None:
    plain = TextNode(text="Our refund policy: 30 days.", id_="kb-1", metadata={"title": "Refunds"})
    postprocessor = FreshguardPostprocessor(checker=in_process, pipeline=PIPELINE)
    engine = index_of([as_node(records[0]), plain]).as_query_engine(
        similarity_top_k=2, node_postprocessors=[postprocessor]
    )

    engine.query("refunds")
    engine.query("refunds again")

    said = "document kb-1 carries no record envelope in its metadata (no object, key or source)"
    assert [b.reasons[0].startswith(said) for b in handler.blocked] == [True, True]
    warned = [
        r for r in caplog.records if r.levelno == logging.WARNING and "carry no record envelope" in r.getMessage()
    ]
    assert len(warned) == 1


def test_a_misconfigured_postprocessor_is_refused_in_words(in_process: Guard) -> None:
    with pytest.raises(ValidationError, match=r"checker must be a guard\.Guard"):
        FreshguardPostprocessor(checker="guard", pipeline=PIPELINE)
    with pytest.raises(ValidationError, match="mapping names when, which are not envelope members"):
        FreshguardPostprocessor(checker=in_process, pipeline=PIPELINE, mapping={"when": "ts"})
