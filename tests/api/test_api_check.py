"""POST /v1/check: decisions over HTTP, 200 whatever the verdict, and problems for what cannot be checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from api import Settings, create_app
from tests.conftest import POLICIES
from tests.serving import AppClient

Fresh = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"


def test_a_fresh_owner_record_is_allowed_with_the_documented_response_shape(client: AppClient, fresh: Fresh) -> None:
    response = client.post("/v1/check", json={"pipeline": "support-bot", "records": [fresh(id="doc-1")]})

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"run_id", "policy", "checked_at", "verdict", "allowed", "records"}
    assert body["policy"] == {"name": "support-assistant", "version": 1}
    assert body["verdict"] == "pass"
    assert body["allowed"] == ["doc-1"]
    [decision] = body["records"]
    assert {k: decision[k] for k in ("id", "action", "reasons")} == {"id": "doc-1", "action": "allow", "reasons": []}
    assert 250 < decision["age_s"] < 400


def test_a_blocked_check_still_answers_200_with_reasons(client: AppClient, fresh: Fresh) -> None:
    stale = fresh(id="old", observed_at="2020-01-01T00:00:00Z", updated_at="2020-01-01T00:00:00Z")

    response = client.post("/v1/check", json={"pipeline": "support-bot", "records": [stale]})

    assert response.status_code == 200
    body = response.json()
    assert (body["verdict"], body["allowed"]) == ("blocked", [])
    [reason] = body["records"][0]["reasons"]
    assert reason["code"] == "STALE"
    assert reason["message"]
    assert reason["detail"]["max_age_s"] == 3600.0


# Codes of the sample file that do not depend on when the test runs.
SAMPLE_CODES = {
    "cust-7": "UNKNOWN_SOURCE",
    "cust-8": "SCHEMA_VIOLATION",
    "ord-3": "MISSING_PROVENANCE",
    "ord-4": "PROVENANCE_BROKEN",
    "inv-2": "UNSIGNED",
    "case-3": "MISSING_TIMESTAMP",
    "case-4": "UNAUTHORIZED_SOURCE",
    "lead-1": "UNKNOWN_OBJECT",
    "bad-1": "INVALID_RECORD",
}


def test_the_sample_records_get_their_time_independent_codes(client: AppClient) -> None:
    lines = (POLICIES / "support-assistant.records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]

    response = client.post("/v1/check", json={"pipeline": "support-bot", "records": records})

    assert response.status_code == 200
    decisions = response.json()["records"]
    assert [d["id"] for d in decisions] == [r.get("id", d["id"]) for r, d in zip(records, decisions, strict=True)]
    codes = {d["id"]: {reason["code"] for reason in d["reasons"]} for d in decisions}
    for record_id, code in SAMPLE_CODES.items():
        assert code in codes[record_id], record_id
        assert next(d for d in decisions if d["id"] == record_id)["action"] == "block"


@pytest.mark.parametrize("junk", [42, None, "text", [1, 2], {"id": "x"}, {"id": 7, "object": ["customer"]}, True])
def test_a_json_value_that_is_not_an_envelope_is_decided_invalid_record(
    client: AppClient, fresh: Fresh, junk: Any
) -> None:
    response = client.post("/v1/check", json={"pipeline": "p", "records": [fresh(id="ok"), junk]})

    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "partial"
    assert body["allowed"] == ["ok"]
    assert [r["code"] for r in body["records"][1]["reasons"]] == ["INVALID_RECORD"]


def test_the_consumer_is_kept_with_the_run(client: AppClient, fresh: Fresh) -> None:
    consumer = {"model": "gpt-x", "call_id": "c-1"}
    run_id = client.post("/v1/check", json={"pipeline": "p", "records": [fresh()], "consumer": consumer}).json()[
        "run_id"
    ]

    assert client.get(f"/v1/runs/{run_id}").json()["consumer"] == consumer


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"].startswith("urn:freshguard:problem:")
    return body


@pytest.mark.parametrize(
    "content",
    [b'{"pipeline": "p", "records": [', b"not json at all", b'{"pipeline": "p", "records": [NaN'],
)
def test_a_body_that_is_not_json_is_a_400_problem(client: AppClient, content: bytes) -> None:
    response = client.post("/v1/check", content=content, headers={"content-type": "application/json"})

    assert "JSON" in _problem(response, 400)["detail"]


def test_an_empty_body_is_a_422_problem_naming_the_body(client: AppClient) -> None:
    response = client.post("/v1/check", content=b"", headers={"content-type": "application/json"})

    assert [e["loc"] for e in _problem(response, 422)["errors"]] == [["body"]]


def test_a_body_sent_as_another_media_type_is_a_415_problem(client: AppClient) -> None:
    response = client.post("/v1/check", content=b"hello", headers={"content-type": "text/plain"})

    _problem(response, 415)


@pytest.mark.parametrize(
    ("body", "locations"),
    [
        ({"pipeline": "p", "records": {"id": "x"}}, [["body", "records"]]),
        ({"pipeline": "p"}, [["body", "records"]]),
        ({"records": []}, [["body", "pipeline"]]),
        ({"pipeline": "", "records": 5}, [["body", "pipeline"], ["body", "records"]]),
        ({"pipeline": "p", "records": [], "consumer": "gpt"}, [["body", "consumer"]]),
        ({"pipeline": "p", "records": [], "extra": 1}, [["body", "extra"]]),
        ([1, 2], [["body"]]),
    ],
)
def test_a_request_of_the_wrong_shape_is_a_422_problem_naming_each_location(
    client: AppClient, body: Any, locations: list[list[str]]
) -> None:
    problem = _problem(client.post("/v1/check", json=body), 422)

    assert [e["loc"] for e in problem["errors"]] == locations
    assert all(e["message"] and e["type"] for e in problem["errors"])


def _limited(settings: Settings, **limits: int) -> AppClient:
    return AppClient(create_app(settings.model_copy(update=limits)), raise_server_exceptions=False)


def test_a_body_over_the_limit_is_a_413_problem(settings: Settings, fresh: Fresh) -> None:
    with _limited(settings, max_body_bytes=2000) as client:
        small = client.post("/v1/check", json={"pipeline": "p", "records": [fresh()]})
        big = client.post("/v1/check", json={"pipeline": "p", "records": [fresh() for _ in range(20)]})

    assert small.status_code == 200
    assert "2,000 bytes" in _problem(big, 413)["detail"]


def test_a_streamed_body_over_the_limit_is_refused_before_it_is_read_whole(settings: Settings) -> None:
    """Without a Content-Length, the body is counted as it arrives: reading stops at the limit."""
    app = create_app(settings.model_copy(update={"max_body_bytes": 10_000}))
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": pulled < 1000}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/check", "raw_path": b"/v1/check", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "app": app,
    }  # fmt: skip

    anyio.run(app, scope, receive, send)

    assert sent[0]["status"] == 413
    assert pulled <= 11


def test_more_records_than_the_limit_is_a_413_problem(settings: Settings, fresh: Fresh) -> None:
    with _limited(settings, max_records=3) as client:
        at_limit = client.post("/v1/check", json={"pipeline": "p", "records": [fresh() for _ in range(3)]})
        over = client.post("/v1/check", json={"pipeline": "p", "records": [fresh() for _ in range(4)]})

    assert at_limit.status_code == 200
    assert "at most 3" in _problem(over, 413)["detail"]


def test_an_unknown_path_is_a_404_problem(client: AppClient) -> None:
    _problem(client.get("/v1/nothing-here"), 404)


def test_a_lone_surrogate_in_a_record_makes_it_invalid_not_the_answer(client: AppClient, fresh: Fresh) -> None:
    """Text no database can keep is refused with a reason, for that record only; the check is answered and kept."""
    content = json.dumps({"pipeline": "p", "records": [fresh(key="K\ud800"), fresh(key="K-2")]}).encode()

    response = client.post("/v1/check", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 200
    first, second = response.json()["records"]
    assert [reason["code"] for reason in first["reasons"]] == ["INVALID_RECORD"]
    assert "`key` holds a lone surrogate" in first["reasons"][0]["message"]
    assert second["action"] == "allow"
    assert client.get(f"/v1/runs/{response.json()['run_id']}").status_code == 200


def test_the_openapi_page_declares_models_and_problems_for_every_endpoint(client: AppClient) -> None:
    schema = client.get("/openapi.json").json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ok = operation["responses"]["200"]
            if path == "/metrics":
                assert ok["content"]["text/plain; version=0.0.4; charset=utf-8"]["schema"] == {"type": "string"}
            else:
                assert "$ref" in json.dumps(ok), (method, path)
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    assert list(response["content"]) == [PROBLEM], (method, path, status)
    check = schema["paths"]["/v1/check"]["post"]
    assert {"400", "413", "415", "422", "503"} <= set(check["responses"])
    assert "examples" in schema["components"]["schemas"]["CheckRequest"]
    assert client.get("/docs").status_code == 200


def test_nothing_is_built_before_the_app_starts(tmp_path: Path) -> None:
    missing = Settings(policy=tmp_path / "absent.yaml", database_url=f"sqlite:///{tmp_path / 'l.db'}")

    app = create_app(missing)

    assert app.state.guard is None
    assert not (tmp_path / "l.db").exists()


@pytest.mark.parametrize("path", ["/v1/check", "/v1/changes", "/v1/sources/sap/heartbeats"])
def test_a_body_nested_too_deeply_is_a_400_problem_that_says_so(client: AppClient, path: str) -> None:
    deep = '{"pipeline": "p", "records": [' + "[" * 100_000 + "]" * 100_000 + "]}"

    response = client.post(path, content=deep, headers={"content-type": "application/json"})

    assert (response.status_code, response.headers["content-type"]) == (400, "application/problem+json")
    assert "nested too deeply" in response.json()["detail"]


@pytest.mark.parametrize(
    ("members", "where", "words"),
    [
        ({"consumer": {"model": "\udc00"}}, ["body", "consumer"], "consumer.model holds a lone surrogate"),
        ({"pipeline": "rag\u0000"}, ["body", "pipeline"], "holds a NUL character"),
        ({"consumer": {"model": "m", "note": "n" * 1001}}, ["body", "consumer"], "consumer.note is 1,001 characters"),
    ],
    ids=["lone surrogate in consumer", "NUL in pipeline", "long consumer text"],
)
def test_request_text_the_store_cannot_keep_is_a_422_naming_the_member(
    client: AppClient, fresh: Fresh, members: dict[str, Any], where: list[str], words: str
) -> None:
    content = json.dumps({"pipeline": "p", "records": [fresh()], **members}).encode()

    response = client.post("/v1/check", content=content, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert response.json()["type"] == "urn:freshguard:problem:input-error"
    assert [error["loc"] for error in response.json()["errors"]] == [where]
    assert words in response.json()["detail"]
    assert client.get("/v1/runs").status_code == 200
    assert client.get("/v1/runs").json()["runs"] == []
