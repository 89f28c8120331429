"""The OpenAPI document: links that lead to every operation needing an id, and every problem type declared."""

from __future__ import annotations

from typing import Any

import pytest

from api import Settings, create_app
from api.problem_types import COMMON_TYPES, PROBLEM_TYPES
from api.problems import problem, responses
from tests.conftest import EXAMPLE_POLICY
from tests.serving import AppClient

Operation = tuple[str, str]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document of an app that is not started (the document needs no guard)."""
    return create_app(Settings(policy=EXAMPLE_POLICY, database_url="sqlite://")).openapi()


def _operations(document: dict[str, Any]) -> dict[Operation, dict[str, Any]]:
    return {(method.upper(), path): op for path, item in document["paths"].items() for method, op in item.items()}


def _target(document: dict[str, Any], link: dict[str, Any]) -> Operation:
    """The (method, path) a link's operationRef (`#/paths/~1v1~1runs~1{run_id}/get`) points at."""
    _, _, escaped, method = link["operationRef"].split("/")
    return method.upper(), escaped.replace("~1", "/").replace("~0", "~")


def _links(document: dict[str, Any]) -> list[tuple[Operation, str, dict[str, Any]]]:
    return [
        (source, name, link)
        for source, op in _operations(document).items()
        for response in op["responses"].values()
        for name, link in response.get("links", {}).items()
    ]


def test_every_link_leads_to_an_operation_and_fills_only_parameters_it_takes(document: dict[str, Any]) -> None:
    operations = _operations(document)
    for source, name, link in _links(document):
        target = _target(document, link)
        assert target in operations, f"{source} link {name} leads to {target}, which the document does not have"
        taken = {parameter["name"] for parameter in operations[target].get("parameters", [])}
        assert set(link.get("parameters", {})) <= taken, f"{source} link {name}: {target} takes {taken}"
        required = {p["name"] for p in operations[target].get("parameters", []) if p["in"] == "path"}
        assert required <= set(link.get("parameters", {})), f"{source} link {name} leaves {target}'s path unfilled"


def test_every_operation_that_needs_an_id_is_led_to_by_a_link(document: dict[str, Any]) -> None:
    """So a client (or a stateful fuzzer) finds, from the operations that make ids, every one that uses them."""
    needing = {
        operation
        for operation, op in _operations(document).items()
        if any(parameter["in"] == "path" for parameter in op.get("parameters", []))
    }
    led_to = {_target(document, link) for _, _, link in _links(document)}

    assert needing - led_to == set()
    expected = {
        ("POST", "/v1/check"): {"GET /v1/runs/{run_id}", "POST /v1/runs/{run_id}/consumption",
                                "GET /v1/lineage/{object}/{key}"},
        ("GET", "/v1/incidents"): {"GET /v1/incidents/{incident_id}", "POST /v1/incidents/{incident_id}/acknowledge"},
        ("PUT", "/v1/policy"): {"GET /v1/policy/versions/{version}"},
    }  # fmt: skip
    for source, targets in expected.items():
        found = {" ".join(_target(document, link)) for origin, _, link in _links(document) if origin == source}
        assert found == targets, source


def test_every_error_answer_is_a_problem_whose_type_is_one_the_route_declares(document: dict[str, Any]) -> None:
    for (method, path), op in _operations(document).items():
        for status, response in op["responses"].items():
            if status[0] not in "45":
                continue
            [(media_type, media)] = response["content"].items()
            assert media_type == "application/problem+json", (method, path, status)
            [problem_schema, declared] = media["schema"]["allOf"]
            assert problem_schema == {"$ref": "#/components/schemas/Problem"}
            urns = declared["properties"]["type"]["enum"]
            assert urns, (method, path, status)
            assert sorted(media["examples"]) == sorted(urn.rsplit(":", 1)[1] for urn in urns)
            for urn in urns:
                assert urn in response["description"], (method, path, status, urn)


def test_a_401_documents_its_www_authenticate_header(document: dict[str, Any]) -> None:
    answers = [op["responses"]["401"] for op in _operations(document).values() if "401" in op["responses"]]

    assert answers
    assert all("WWW-Authenticate" in answer["headers"] for answer in answers)


def test_a_problem_type_that_is_not_listed_cannot_be_answered() -> None:
    with pytest.raises(ValueError, match=r"'made-up' is not in api\.problem_types"):
        problem(422, "made-up", "nothing")


@pytest.mark.parametrize(
    ("statuses", "types", "message"),
    [
        ((422,), {409: ("version-conflict",)}, "statuses this route does not declare"),
        ((409,), {409: ("not-found",)}, "not-found is not answered with 409"),
    ],
)
def test_a_route_cannot_declare_a_problem_type_for_a_status_it_does_not_come_with(
    statuses: tuple[int, ...], types: dict[int, tuple[str, ...]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        responses(*statuses, types=types)


def test_the_shared_handlers_types_are_listed_with_an_example_for_their_status() -> None:
    for status, names in COMMON_TYPES.items():
        for name in names:
            assert status in PROBLEM_TYPES[name].examples, (status, name)


def test_a_405_allows_every_method_the_document_gives_its_path(client: AppClient, document: dict[str, Any]) -> None:
    """Starlette names only the first route that matched the path (`Allow: GET` for GET and PUT /v1/policy)."""
    for path, item in document["paths"].items():
        concrete = path.replace("{", "").replace("}", "")  # a value for each path parameter
        response = client.request("DELETE" if "delete" not in item else "PATCH", concrete)

        assert response.status_code == 405, path
        assert response.json()["type"] == "urn:freshguard:problem:method-not-allowed"
        assert sorted(response.headers["allow"].split(", ")) == sorted(method.upper() for method in item), path


@pytest.mark.parametrize("accept", [None, "application/openmetrics-text; version=1.0.0", "text/plain"])
def test_metrics_answer_in_a_media_type_the_document_gives(
    client: AppClient, document: dict[str, Any], accept: str | None
) -> None:
    """Prometheus asks for OpenMetrics by its Accept header; that answer is documented too."""
    response = client.get("/metrics", headers={"accept": accept} if accept else {})

    documented = {name.split(";")[0] for name in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]}
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in documented
