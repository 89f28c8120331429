"""GET /v1/runs, /v1/runs/{run_id}, /v1/lineage/{object}/{key}, /healthz and /readyz."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api import Settings, create_app
from guard.errors import StoreError
from tests.serving import AppClient

Fresh = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"


def _check(client: AppClient, pipeline: str, *records: Any) -> str:
    response = client.post("/v1/check", json={"pipeline": pipeline, "records": list(records)})
    assert response.status_code == 200
    run_id: str = response.json()["run_id"]
    return run_id


def test_runs_are_listed_newest_first_and_filtered_by_pipeline(client: AppClient, fresh: Fresh) -> None:
    first = _check(client, "support-bot", fresh())
    second = _check(client, "billing-bot", fresh())
    third = _check(client, "support-bot", fresh(), fresh(observed_at="2020-01-01T00:00:00Z"))

    everything = client.get("/v1/runs").json()["runs"]
    support = client.get("/v1/runs", params={"pipeline": "support-bot"}).json()["runs"]
    latest = client.get("/v1/runs", params={"limit": 1}).json()["runs"]

    assert [r["run_id"] for r in everything] == [third, second, first]
    assert [r["run_id"] for r in support] == [third, first]
    assert [r["run_id"] for r in latest] == [third]
    assert {k: latest[0][k] for k in ("verdict", "records", "allowed", "blocked")} == {
        "verdict": "partial",
        "records": 2,
        "allowed": 1,
        "blocked": 1,
    }


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"pipeline": ""}])
def test_bad_run_list_parameters_are_a_422_problem(client: AppClient, params: dict[str, Any]) -> None:
    response = client.get("/v1/runs", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["loc"][0] == "query"


def test_runs_are_paged_with_a_cursor_and_filtered_by_verdict_and_time(client: AppClient, fresh: Fresh) -> None:
    stale = {"observed_at": "2020-01-01T00:00:00Z"}
    made = [_check(client, "p", fresh(**(stale if n % 3 == 0 else {}))) for n in range(7)]

    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        body = client.get("/v1/runs", params=params).json()
        pages.append([run["run_id"] for run in body["runs"]])
        if body["next_cursor"] is None:
            break
        params = {"limit": 3, "cursor": body["next_cursor"]}

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [run_id for page in pages for run_id in page] == made[::-1]
    blocked = client.get("/v1/runs", params={"verdict": "blocked"}).json()["runs"]
    assert [run["run_id"] for run in blocked] == [made[6], made[3], made[0]]
    runs = client.get("/v1/runs").json()["runs"]
    middle = runs[3]["checked_at"]
    since = client.get("/v1/runs", params={"since": middle}).json()["runs"]
    until = client.get("/v1/runs", params={"until": middle}).json()["runs"]
    assert {run["run_id"] for run in since} | {run["run_id"] for run in until} == set(made)
    assert {run["run_id"] for run in since} & {run["run_id"] for run in until} == set()


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4Il0"},  # a JSON list, but not [time, run id]
        {"verdict": "maybe"},
        {"since": "yesterday"},
        {"until": "2026-11-22T10:00:00"},  # no offset
        {"since": "0.5"},  # a number is not a timestamp, though pydantic reads it as Unix time
        {"until": "1763805600"},
    ],
)
def test_bad_filters_and_cursors_are_a_422_problem_naming_the_parameter(
    client: AppClient, params: dict[str, Any]
) -> None:
    response = client.get("/v1/runs", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["loc"] == ["query", next(iter(params))]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "WyJ4Il0", "0" * 200])
def test_a_cursor_this_service_did_not_give_is_an_invalid_cursor_problem(client: AppClient, cursor: str) -> None:
    """A well-formed request refused for what its cursor says: its own problem type, which the document lists."""
    response = client.get("/v1/runs", params={"cursor": cursor})

    problem = response.json()
    assert (response.status_code, problem["type"]) == (422, "urn:freshguard:problem:invalid-cursor")
    assert [error["loc"] for error in problem["errors"]] == [["query", "cursor"]]
    assert "pass next_cursor as it came" in problem["detail"]


def test_a_run_shows_every_decision_with_its_reasons(client: AppClient, fresh: Fresh) -> None:
    run_id = _check(client, "p", fresh(id="good"), fresh(id="old", observed_at="2020-01-01T00:00:00Z"), 42)

    run = client.get(f"/v1/runs/{run_id}").json()

    assert (run["run_id"], run["pipeline"], run["verdict"]) == (run_id, "p", "partial")
    assert [(d["record_id"], d["action"], d["reasons"]) for d in run["decisions"]] == [
        ("good", "allow", []),
        ("old", "block", ["STALE"]),
        ("#2", "block", ["INVALID_RECORD"]),
    ]
    assert run["decisions"][1]["explanations"][0]["code"] == "STALE"


def test_an_unknown_run_is_a_404_problem(client: AppClient) -> None:
    response = client.get("/v1/runs/no-such-run")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "no-such-run" in response.json()["detail"]


def test_lineage_lists_every_decision_about_one_entity_oldest_first(client: AppClient, fresh: Fresh) -> None:
    first = _check(client, "a", fresh(key="C-1"), fresh(key="C-2"))
    second = _check(client, "b", fresh(key="C-1", source="sap"))

    history = client.get("/v1/lineage/customer/C-1").json()

    assert (history["object"], history["key"]) == ("customer", "C-1")
    assert [(d["run_id"], d["pipeline"], d["source"]) for d in history["decisions"]] == [
        (first, "a", "salesforce"),
        (second, "b", "sap"),
    ]
    assert history["decisions"][0]["policy_name"] == "support-assistant"
    assert client.get("/v1/lineage/customer/C-unknown").json()["decisions"] == []


def test_liveness_and_readiness_answer_when_the_guard_is_up(client: AppClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["policy"] == {"name": "support-assistant", "version": 1}


def test_readiness_is_a_503_problem_when_the_store_does_not_answer(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.app.state.guard.store  # type: ignore[attr-defined]

    def unreachable(*_: Any) -> None:
        raise StoreError("cannot reach the lineage store: connection refused")

    monkeypatch.setattr(store, "probe_write", unreachable)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert "connection refused" in response.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_readiness_is_a_503_problem_before_the_guard_is_built(settings: Settings) -> None:
    client = AppClient(create_app(settings))  # not entered: the lifespan has not run

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM


def test_a_policy_that_does_not_load_stops_the_app_from_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: x\nversion: nope\n")
    app = create_app(Settings(policy=bad, database_url=f"sqlite:///{tmp_path / 'l.db'}"))

    with pytest.raises(Exception, match="version"), AppClient(app):
        pass


def test_lineage_of_a_pruned_entity_says_how_far_back_history_goes(client: AppClient, fresh: Fresh) -> None:
    from datetime import timedelta

    from guard._timestamps import utc_now
    from guard.lineage.store import LineageStore, Retention

    _check(client, "a", fresh(key="C-1"))
    assert client.get("/v1/lineage/customer/C-1").json()["pruned_before"] is None
    store: LineageStore = client.app.state.guard.store  # type: ignore[attr-defined]
    horizon_now = utc_now() + timedelta(days=31)  # as if a month had passed: the check is past 30 days

    store.prune(Retention(), horizon_now)

    history = client.get("/v1/lineage/customer/C-1").json()
    assert history["decisions"] == []
    assert history["pruned_before"] is not None
    page = client.get("/lineage/customer/C-1")
    assert "history before it was pruned" in page.text
