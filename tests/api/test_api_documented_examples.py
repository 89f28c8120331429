"""Every operation, reached by the document's own links, answers its documented examples as the document says.

The walk starts at the operations that need no id, sends each documented example body and its edge
cases (only the required members; an empty list), follows every link of every 2xx answer, and checks
each answer against the document: a documented status and media type, a body that keeps the schema.
A response model stricter than what a handler returns (a 500 on a valid request) fails here, for
every route, without a fuzzer. The gateway forwards to a stand-in for the OpenAI API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from api import Settings, create_app
from tests.api.conftest import SAMPLE_KEY, seed_store
from tests.conftest import EXAMPLE_POLICY
from tests.integrations.conftest import serve
from tests.integrations.upstream import make_upstream
from tests.serving import AppClient

Document = dict[str, Any]
Operation = tuple[str, str]
#: Publishing a policy changes what every later request is decided under: it goes last.
LAST = ("PUT", "/v1/policy")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    """The app (open, on loopback) over a store seeded with four hours of history, its gateway wired upstream."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('documented') / 'lineage.db'}"
    seed_store(database_url, hours=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRIPE_SIGNING_KEY", SAMPLE_KEY)
        for upstream in serve(make_upstream().app):
            settings = Settings(
                policy=EXAMPLE_POLICY, database_url=database_url, watch_every_s=0,
                openai_upstream_url=f"{upstream}/v1",
            )  # fmt: skip
            with AppClient(create_app(settings), raise_server_exceptions=False) as started:
                yield started


@dataclass
class Walk:
    """What the walk sent and what came back wrong."""

    document: Document
    client: AppClient
    served: set[Operation] = field(default_factory=set)
    visited: set[tuple[Operation, str]] = field(default_factory=set)
    wrong: list[str] = field(default_factory=list)

    def operation(self, key: Operation) -> dict[str, Any]:
        method, path = key
        found: dict[str, Any] = self.document["paths"][path][method.lower()]
        return found

    def visit(self, key: Operation, path_values: dict[str, Any], link_body: dict[str, Any] | None) -> None:
        """Send every body the operation documents; follow the links of each 2xx answer."""
        signature = json.dumps([path_values, link_body], sort_keys=True, default=str)
        if (key, signature) in self.visited:
            return
        self.visited.add((key, signature))
        method, template = key
        path = template.format(**{name: str(value) for name, value in path_values.items()})
        for media_type, sent in documented_bodies(self.document, self.operation(key), link_body):
            content: dict[str, Any] = {}
            if media_type is not None:
                raw = sent if isinstance(sent, str) else json.dumps(sent)
                content = {"content": raw.encode(), "headers": {"content-type": media_type}}
            response = self.client.request(method, path, **content)
            self.judge(key, f"{method} {path} with {json.dumps(sent)[:200]}", response)
            if response.is_success:
                self.served.add(key)
                self.follow(key, response, sent)

    def judge(self, key: Operation, request: str, response: Any) -> None:
        declared = self.operation(key)["responses"].get(str(response.status_code))
        if declared is None:
            self.wrong.append(f"{request}: answered {response.status_code}, which is not documented")
            return
        media_type = response.headers.get("content-type", "").split(";")[0]
        media = next((m for name, m in declared.get("content", {}).items() if name.split(";")[0] == media_type), None)
        if media is None:
            self.wrong.append(f"{request}: answered {response.status_code} as {media_type}, which is not documented")
            return
        if media_type.endswith("json") and "schema" in media:
            schema = {**media["schema"], "components": self.document["components"]}
            for error in Draft202012Validator(schema).iter_errors(response.json()):
                where = "/".join(str(part) for part in error.absolute_path)
                self.wrong.append(f"{request}: answered {response.status_code} off its schema at /{where}: "
                                  f"{error.message[:200]}")  # fmt: skip

    def follow(self, source: Operation, response: Any, sent: Any) -> None:
        status = str(response.status_code)
        answered = response.json() if response.headers.get("content-type", "").endswith("json") else None
        for link in self.operation(source)["responses"][status].get("links", {}).values():
            target = linked_operation(link)
            values = {name: evaluate(expression, answered, sent) for name, expression in link["parameters"].items()}
            if any(value is None for value in values.values()):
                continue  # the answer does not hold what the link needs (an empty list, a null cursor)
            body = link.get("requestBody")
            filled = {name: evaluate(value, answered, sent) for name, value in body.items()} if body else None
            in_path = {p["name"] for p in self.operation(target).get("parameters", []) if p["in"] == "path"}
            self.visit(target, {name: value for name, value in values.items() if name in in_path}, filled)


def linked_operation(link: dict[str, Any]) -> Operation:
    """The (method, path) of a link's operationRef, `#/paths/~1v1~1runs~1{run_id}/get`."""
    _, _, escaped, method = link["operationRef"].split("/")
    return method.upper(), escaped.replace("~1", "/").replace("~0", "~")


def evaluate(expression: Any, answered: Any, sent: Any) -> Any:
    """A runtime expression (`$response.body#/runs/0/run_id`, `$request.body#/0/key`) over one exchange."""
    if not isinstance(expression, str) or not expression.startswith("$"):
        return expression
    source, _, pointer = expression.partition("#")
    node = {"$response.body": answered, "$request.body": sent}[source]
    for part in pointer.split("/")[1:]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def resolved(document: Document, schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its top-level `$ref` (to a component) followed."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def documented_bodies(
    document: Document, operation: dict[str, Any], link_body: dict[str, Any] | None
) -> list[tuple[str | None, Any]]:
    """(media type, body) for each documented example and its edge cases; [(None, None)] without a body."""
    content = operation.get("requestBody", {}).get("content", {})
    if not content:
        return [(None, None)]
    bodies: list[tuple[str | None, Any]] = []
    for media_type, media in content.items():
        schema = resolved(document, media.get("schema", {}))
        for example in _examples(document, media, schema):
            for body in _edges(document, schema, example):
                sent = {**body, **link_body} if isinstance(body, dict) and link_body else body
                bodies.append((media_type, sent))
    return bodies


def _examples(document: Document, media: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [example["value"] for example in media["examples"].values()]
    if schema.get("type") == "array":
        return [[item] for item in resolved(document, schema["items"]).get("examples", [])]
    return list(schema.get("examples", []))


def _edges(document: Document, schema: dict[str, Any], example: Any) -> list[Any]:
    """The example; the same with its required members only; an empty list for a list body."""
    if isinstance(example, list):
        items = resolved(document, schema.get("items", {}))
        return [example, [], *([[_required_only(items, example[0])]] if example else [])]
    if isinstance(example, dict):
        return [example, _required_only(schema, example)]
    return [example]


def _required_only(schema: dict[str, Any], example: Any) -> Any:
    if not isinstance(example, dict) or "required" not in schema:
        return example
    return {name: value for name, value in example.items() if name in schema["required"]}


def test_every_operation_answers_its_documented_examples_as_documented(client: AppClient) -> None:
    document: Document = client.get("/openapi.json").json()
    walk = Walk(document, client)
    operations = [(method.upper(), path) for path, item in document["paths"].items() for method in item]
    starts = [key for key in operations if "{" not in key[1] and key != LAST] + [LAST]

    for key in starts:
        walk.visit(key, {}, None)

    assert walk.wrong == []
    assert set(operations) - walk.served == set(), "never answered 2xx (no link led there, or every example failed)"


def test_the_walk_sends_each_example_with_its_required_members_only(client: AppClient) -> None:
    """The consumption link without `extra` (which answered 500) is one of the bodies the walk sends."""
    document: Document = client.get("/openapi.json").json()
    consumption = document["paths"]["/v1/runs/{run_id}/consumption"]["post"]

    bodies = [body for _, body in documented_bodies(document, consumption, None)]

    assert bodies == [{"model": "gpt-4o-2024-08-06", "call_id": "chatcmpl-9x7", "ticket": "T-88"},
                      {"model": "gpt-4o-2024-08-06"}]  # fmt: skip
