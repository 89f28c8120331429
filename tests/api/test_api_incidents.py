"""GET /v1/incidents, one incident with its impact, and acknowledging it; the watcher in the service."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api import Settings, create_app
from guard.watch import Watcher
from tests.api.conftest import auth_as
from tests.conftest import ts
from tests.serving import AppClient

Fresh = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"


def _breach(client: AppClient, fresh: Fresh) -> dict[str, Any]:
    """SAP's customer sync 47 minutes behind, a check that lets a SAP copy through, an evaluation."""
    synced = datetime.now(UTC) - timedelta(minutes=47)
    headers = {"Authorization": client.headers.get("Authorization", "")} if "Authorization" in client.headers else {}
    assert client.post("/v1/sources/sap/heartbeats", json={"object": "customer", "synced_at": ts(synced)},
                       headers=headers).status_code == 200  # fmt: skip
    watcher: Watcher = client.app.state.watcher  # type: ignore[attr-defined]
    watcher.evaluate()
    checked = client.post(
        "/v1/check",
        json={"pipeline": "support-bot", "records": [fresh(source="sap")], "consumer": {"model": "gpt-4o",
                                                                                         "call_id": "c-1"}},
        headers=headers,
    )  # fmt: skip
    assert checked.status_code == 200
    body: dict[str, Any] = checked.json()
    return body


def test_a_breach_is_listed_with_its_durations_and_what_it_touched(client: AppClient, fresh: Fresh) -> None:
    run = _breach(client, fresh)

    listed = client.get("/v1/incidents").json()["incidents"]

    [incident] = listed
    assert (incident["source"], incident["object"], incident["open"], incident["breaches"]) == (
        "sap", "customer", True, ["lag"],
    )  # fmt: skip
    assert incident["findings"][0].startswith("sap → customer: behind by 47m; agreed 15m")
    assert 31 * 60 < incident["time_to_detect_s"] < 33 * 60
    assert incident["recovery_objective_s"] == 1800
    assert incident["past_objective"] is True  # open for 32 minutes against 30
    assert (incident["runs_affected"], incident["model_calls_affected"]) == (1, 1)
    detail = client.get(f"/v1/incidents/{incident['id']}").json()
    assert [r["run_id"] for r in detail["impact"]] == [run["run_id"]]
    assert detail["impact"][0]["model_calls"][0]["call_id"] == "c-1"
    assert detail["figures"]["state"] == "breached"
    assert client.get("/v1/incidents", params={"state": "open"}).json()["incidents"][0]["id"] == incident["id"]


def test_an_operator_acknowledges_once_and_the_first_acknowledgement_stands(
    settings: Settings, keys_file: Any, fresh: Fresh
) -> None:
    with AppClient(create_app(settings.model_copy(update={"keys_file": keys_file}))) as keyed:
        keyed.headers["Authorization"] = auth_as("ops-admin")["Authorization"]
        _breach(keyed, fresh)
        [incident] = keyed.get("/v1/incidents").json()["incidents"]

        refused = keyed.post(f"/v1/incidents/{incident['id']}/acknowledge", headers=auth_as("support-bot"))
        first = keyed.post(f"/v1/incidents/{incident['id']}/acknowledge", headers=auth_as("dashboard"))
        second = keyed.post(f"/v1/incidents/{incident['id']}/acknowledge", headers=auth_as("ops-admin"))

    assert refused.status_code == 403
    assert first.status_code == 200
    assert first.json()["acknowledged_by"] == "dashboard"
    assert first.json()["time_to_acknowledge_s"] >= 0
    assert second.json()["acknowledged_by"] == "dashboard"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v1/incidents/99"), ("post", "/v1/incidents/99/acknowledge"), ("get", "/v1/incidents/0")],
)
def test_an_unknown_incident_is_a_problem(client: AppClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("since", ["0.5", "1763805600", "yesterday", "2026-11-22T10:00:00"])
def test_since_that_is_not_a_timestamp_with_an_offset_is_a_422_naming_it(client: AppClient, since: str) -> None:
    response = client.get("/v1/incidents", params={"since": since})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "since"]


def test_the_service_runs_the_watcher_on_its_schedule(settings: Settings, fresh: Fresh) -> None:
    synced = datetime.now(UTC) - timedelta(minutes=47)
    with AppClient(create_app(settings.model_copy(update={"watch_every_s": 0.2}))) as client:
        client.post("/v1/sources/sap/heartbeats", json={"object": "customer", "synced_at": ts(synced)})
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while not client.get("/v1/incidents").json()["incidents"] and datetime.now(UTC) < deadline:
            time.sleep(0.05)

        incidents = client.get("/v1/incidents").json()["incidents"]
        metrics = client.get("/metrics").text

    assert [i["source"] for i in incidents] == ["sap"]
    assert "freshguard_incidents_open 1.0" in metrics
