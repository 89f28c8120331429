"""`POST /v1/check`'s everyday path in plain ASGI (api/fast_check.py): it answers as the FastAPI route does, and
hands the route everything it does not answer itself (the route's refusals are tested in test_api_check.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from api.routes import check as check_route
from tests.api.conftest import key_of
from tests.serving import AppClient

Fresh = Callable[..., dict[str, Any]]


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the checks the FastAPI route answered (the fast path answers through `answer` too, not the route)."""
    calls: list[int] = []
    route_answer = check_route.answer

    def counted(*args: Any) -> bytes:
        calls.append(1)
        return route_answer(*args)

    monkeypatch.setattr(check_route, "answer", counted)
    return calls


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs from one check to the next: its run id, its moment and the ages it found."""
    kept = {k: v for k, v in document.items() if k not in ("run_id", "duration_ms", "checked_at")}
    kept["records"] = [{k: v for k, v in one.items() if k != "age_s"} for one in document["records"]]
    return kept


def test_an_everyday_check_is_answered_as_the_route_answers_it(
    client: AppClient, fresh: Fresh, route_calls: list[int]
) -> None:
    def body(path: str) -> bytes:  # the same records about entities of their own, named after the path taken
        return orjson.dumps({"pipeline": "support-bot", "records": [fresh(id=f"{path}-{n}", key=f"C-{path}-{n}")
                                                                      for n in range(3)]})  # fmt: skip

    fast = client.post("/v1/check", content=body("fast"), headers={"content-type": "application/json"})
    assert route_calls == [], "the everyday check went through the FastAPI route"
    routed = client.post(
        "/v1/check", content=body("routed"), headers={"content-type": "application/json; charset=utf-8"}
    )
    assert route_calls == [1], "a charset parameter goes to the route"
    assert fast.status_code == routed.status_code == 200
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["x-freshguard-run-id"] == fast.json()["run_id"]
    assert _comparable(fast.json()) == _comparable(orjson.loads(routed.content.replace(b"routed", b"fast")))
    runs = client.get("/v1/runs").json()["runs"]
    assert {run["run_id"] for run in runs} == {fast.json()["run_id"], routed.json()["run_id"]}


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{not json", {}, 400),
        (b'{"pipeline": "p"}', {}, 422),
        (b'{"pipeline": "p", "records": [], "extra": 1}', {}, 422),
        (b'{"pipeline": "p", "records": []}', {"idempotency-key": ""}, 400),
    ],
)
def test_what_the_fast_path_does_not_answer_reaches_the_route_with_its_body(
    client: AppClient, content: bytes, headers: dict[str, str], status: int
) -> None:
    answer = client.post("/v1/check", content=content, headers={"content-type": "application/json", **headers})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"authorization": f"Bearer {key_of('support-bot')}"}, 200),
        ({"x-api-key": key_of("ops-admin")}, 200),
        ({"authorization": f"Bearer {key_of('dashboard')}"}, 403),
        ({"authorization": "Bearer not-a-key"}, 401),
        ({"authorization": f"Basic {key_of('support-bot')}"}, 401),
        ({}, 401),
    ],
)
def test_keys_are_checked_as_the_route_checks_them(
    keyed: AppClient, fresh: Fresh, route_calls: list[int], headers: dict[str, str], status: int
) -> None:
    body = orjson.dumps({"pipeline": "p", "records": [fresh()]})
    answer = keyed.post("/v1/check", content=body, headers={"content-type": "application/json", **headers})
    assert answer.status_code == status, answer.text
    assert route_calls == []  # a check answered on the fast path, or a refusal (which the route answers)
    if status != 200:
        assert answer.headers["content-type"] == "application/problem+json"
