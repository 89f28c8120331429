"""POST /v1/changes, POST /v1/sources/{source}/heartbeats and POST /v1/runs/{run_id}/consumption, with real keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api import Settings, create_app
from api.keys import hash_key
from tests.conftest import ts
from tests.serving import AppClient

Fresh = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"

#: name: (role, bound source, key)
KEYS = {
    "ops-admin": ("admin", None, "adm-0b6e2f8a4c1d9e7b3a5f0c2d8e6b4a1f"),
    "support-bot": ("pipeline", None, "pip-7d2a9c4e1f8b6d3a0e5c2f9b7d4a1e8c"),
    "dashboard": ("viewer", None, "vwr-3e8b1d6f4a9c2e7b5d0f3a8c6e1b4d9f"),
    "erp-sync": ("source", "sap", "src-9a4c7e2b5d8f1a6c3e0b9d4f7a2c5e8b"),
    "crm-sync": ("source", "salesforce", "src-1f6b3d8a5c2e9f4b7d0a6c3e8f1b5d2a"),
}


def _as(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name][2]}"}


@pytest.fixture
def keyed(settings: Settings, tmp_path: Path) -> Iterator[AppClient]:
    """A client of the app with a keys file: one key of each role, and source keys for sap and salesforce."""
    path = tmp_path / "keys.yaml"
    lines = []
    for name, (role, source, key) in KEYS.items():
        lines += [f"- name: {name}", f"  role: {role}", f"  key_sha256: {hash_key(key)}"]
        lines += [f"  source: {source}"] if source is not None else []
    path.write_text("\n".join(lines) + "\n")
    app = create_app(settings.model_copy(update={"keys_file": path}))
    with AppClient(app, raise_server_exceptions=False) as client:
        yield client


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _change(obj: str = "customer", key: str = "C-1042", updated_at: datetime | None = None) -> dict[str, str]:
    return {"object": obj, "key": key, "updated_at": ts(updated_at or _now() - timedelta(minutes=1))}


# --- POST /v1/changes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["crm-sync", "ops-admin"])
def test_the_owner_source_and_admins_post_changes_that_supersede_older_copies(
    keyed: AppClient, fresh: Fresh, name: str
) -> None:
    changed = _now() - timedelta(minutes=1)

    response = keyed.post("/v1/changes", json=[_change(updated_at=changed)], headers=_as(name))
    check = keyed.post(
        "/v1/check",
        json={"pipeline": "p", "records": [fresh(id="old", source="sap", updated_at=ts(changed - timedelta(hours=1)))]},
        headers=_as("support-bot"),
    )

    assert (response.status_code, response.json()) == (200, {"accepted": 1})
    [decision] = check.json()["records"]
    assert [reason["code"] for reason in decision["reasons"]] == ["SUPERSEDED"]


def test_a_source_key_may_not_post_changes_to_an_object_another_source_owns(keyed: AppClient) -> None:
    response = keyed.post("/v1/changes", json=[_change("order", "O-1"), _change("customer")], headers=_as("erp-sync"))

    body = _problem(response, 403)
    assert body["type"] == "urn:freshguard:problem:forbidden"
    assert "changes[1]: customer is owned by salesforce" in body["detail"]
    assert "bound to 'sap'" in body["detail"]


def test_a_source_key_posts_changes_to_the_objects_its_source_owns(keyed: AppClient) -> None:
    response = keyed.post(
        "/v1/changes", json=[_change("order", "O-1"), _change("order", "O-2")], headers=_as("erp-sync")
    )

    assert (response.status_code, response.json()) == (200, {"accepted": 2})


@pytest.mark.parametrize(("name", "status"), [("support-bot", 403), ("dashboard", 403), (None, 401)])
def test_keys_of_other_roles_may_not_post_changes(keyed: AppClient, name: str | None, status: int) -> None:
    response = keyed.post("/v1/changes", json=[_change()], headers=_as(name) if name else {})

    _problem(response, status)


def test_changes_to_objects_the_policy_does_not_cover_are_a_422_naming_each_item(keyed: AppClient) -> None:
    changes = [_change(), _change("lead"), _change(), _change("opportunity")]

    body = _problem(keyed.post("/v1/changes", json=changes, headers=_as("ops-admin")), 422)

    assert body["type"] == "urn:freshguard:problem:unknown-object"
    assert "changes[1].object: 'lead'" in body["detail"]
    assert "changes[3].object: 'opportunity'" in body["detail"]
    assert [error["loc"] for error in body["errors"]] == [["body", 1, "object"], ["body", 3, "object"]]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ([{"object": "customer", "key": "C-1", "updated_at": "2026-11-22T10:00:00"}], ["body", 0, "updated_at"]),
        ([{"object": "customer", "key": "C-1", "updated_at": 1763805600}], ["body", 0, "updated_at"]),
        ([{"object": "customer", "key": "C-1", "updated_at": "yesterday"}], ["body", 0, "updated_at"]),
        ([{"object": "customer", "key": "C-1", "updated_at": "1763805600"}], ["body", 0, "updated_at"]),  # Unix time
        ([{"object": "customer", "key": "C-1", "updated_at": "0.5"}], ["body", 0, "updated_at"]),
        ([{"object": "customer", "key": "", "updated_at": "2026-11-22T10:00:00Z"}], ["body", 0, "key"]),
        ([{"object": "", "key": "C-1", "updated_at": "2026-11-22T10:00:00Z"}], ["body", 0, "object"]),
        ([{"object": "customer", "updated_at": "2026-11-22T10:00:00Z"}], ["body", 0, "key"]),
        ({"changes": []}, ["body"]),
    ],
)
def test_changes_of_the_wrong_shape_are_a_422_naming_the_location(
    keyed: AppClient, body: Any, where: list[Any]
) -> None:
    problem = _problem(keyed.post("/v1/changes", json=body, headers=_as("ops-admin")), 422)

    assert problem["type"] == "urn:freshguard:problem:invalid-request"
    assert where in [error["loc"] for error in problem["errors"]]


def test_a_change_dated_in_the_future_is_a_422_with_the_library_s_message(keyed: AppClient) -> None:
    response = keyed.post(
        "/v1/changes", json=[_change(updated_at=_now() + timedelta(hours=1))], headers=_as("crm-sync")
    )

    body = _problem(response, 422)
    assert "in the future" in body["detail"]
    assert "customer C-1042" in body["detail"]


# --- POST /v1/sources/{source}/heartbeats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "source", "obj"), [("erp-sync", "sap", "customer"), ("ops-admin", "warehouse", "product")]
)
def test_a_heartbeat_of_an_owner_or_replica_is_stored_and_answered(
    keyed: AppClient, name: str, source: str, obj: str
) -> None:
    synced = _now() - timedelta(minutes=3)

    response = keyed.post(
        f"/v1/sources/{source}/heartbeats", json={"object": obj, "synced_at": ts(synced)}, headers=_as(name)
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["source"], body["object"], datetime.fromisoformat(body["synced_at"])) == (source, obj, synced)
    received = datetime.fromisoformat(body["received_at"])
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=1)
    store = keyed.app.state.guard.store  # type: ignore[attr-defined]
    assert store.latest_heartbeats() == {(source, obj, ""): synced}


@pytest.mark.parametrize(("name", "status"), [("crm-sync", 403), ("support-bot", 403), ("dashboard", 403), (None, 401)])
def test_only_the_source_s_own_key_or_an_admin_posts_its_heartbeats(
    keyed: AppClient, name: str | None, status: int
) -> None:
    response = keyed.post(
        "/v1/sources/sap/heartbeats",
        json={"object": "customer", "synced_at": ts(_now())},
        headers=_as(name) if name else {},
    )

    _problem(response, status)


def test_a_heartbeat_for_a_source_the_policy_does_not_have_is_a_404(keyed: AppClient) -> None:
    response = keyed.post(
        "/v1/sources/oracle/heartbeats", json={"object": "customer", "synced_at": ts(_now())}, headers=_as("ops-admin")
    )

    body = _problem(response, 404)
    assert "'oracle' is not a source of policy support-assistant" in body["detail"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"object": "lead", "synced_at": "2026-11-22T10:00:00Z"}, "does not cover"),
        ({"object": "invoice", "synced_at": "2026-11-22T10:00:00Z"}, "sap neither owns invoice (its owner is stripe)"),
        ({"object": "customer", "synced_at": "2026-11-22T10:00:00"}, "timezone info"),
        ({"object": "customer"}, "synced_at: Field required"),
        ({"object": "customer", "synced_at": "2026-11-22T10:00:00Z", "rows": 5}, "rows: Extra inputs"),
    ],
)
def test_a_heartbeat_the_policy_or_the_schema_refuses_is_a_422(
    keyed: AppClient, body: dict[str, Any], expected: str
) -> None:
    problem = _problem(keyed.post("/v1/sources/sap/heartbeats", json=body, headers=_as("erp-sync")), 422)

    assert expected in problem["detail"]


def test_a_heartbeat_dated_in_the_future_is_a_422(keyed: AppClient) -> None:
    body = {"object": "customer", "synced_at": ts(_now() + timedelta(hours=1))}

    problem = _problem(keyed.post("/v1/sources/sap/heartbeats", json=body, headers=_as("erp-sync")), 422)

    assert "in the future" in problem["detail"]


# --- consumption and lineage ----------------------------------------------------------------------------------


def _check(client: AppClient, record: dict[str, Any], consumer: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"pipeline": "support-bot", "records": [record]}
    if consumer is not None:
        body["consumer"] = consumer
    response = client.post("/v1/check", json=body, headers=_as("support-bot"))
    assert response.status_code == 200, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def test_lineage_shows_the_model_call_a_check_s_consumer_names(keyed: AppClient, fresh: Fresh) -> None:
    run_id = _check(keyed, fresh(id="a", key="C-7"), {"model": "gpt-4o", "call_id": "call-1", "ticket": "T-8"})

    lineage = keyed.get("/v1/lineage/customer/C-7", headers=_as("dashboard")).json()

    assert lineage["model_calls"] == [{"model": "gpt-4o", "call_id": "call-1", "run_ids": [run_id], "saw_entity": True}]
    [decision] = lineage["decisions"]
    assert [(c["model"], c["call_id"], c["extra"]) for c in decision["model_calls"]] == [
        ("gpt-4o", "call-1", {"ticket": "T-8"})
    ]


def test_a_run_linked_after_the_check_shows_its_call_in_lineage_and_in_the_run(keyed: AppClient, fresh: Fresh) -> None:
    run_id = _check(keyed, fresh(id="a", key="C-8"))
    stale = _check(keyed, fresh(id="b", key="C-8", observed_at=ts(_now() - timedelta(hours=5))))

    linked = keyed.post(
        f"/v1/runs/{run_id}/consumption",
        json={"model": "claude", "call_id": "msg-1", "turn": 3},
        headers=_as("support-bot"),
    )
    keyed.post(f"/v1/runs/{stale}/consumption", json={"model": "claude", "call_id": "msg-1"}, headers=_as("ops-admin"))

    assert linked.status_code == 200, linked.text
    body = linked.json()
    assert (body["run_id"], body["model"], body["call_id"], body["extra"]) == (run_id, "claude", "msg-1", {"turn": 3})
    lineage = keyed.get("/v1/lineage/customer/C-8", headers=_as("dashboard")).json()
    assert lineage["model_calls"] == [
        {"model": "claude", "call_id": "msg-1", "run_ids": [run_id, stale], "saw_entity": True}
    ]
    assert [[c["call_id"] for c in d["model_calls"]] for d in lineage["decisions"]] == [["msg-1"], ["msg-1"]]
    assert [d["action"] for d in lineage["decisions"]] == ["allow", "block"]
    run = keyed.get(f"/v1/runs/{run_id}", headers=_as("dashboard")).json()
    assert [(c["model"], c["call_id"]) for c in run["model_calls"]] == [("claude", "msg-1")]


def test_a_call_that_only_consumed_runs_blocking_the_entity_never_saw_it(keyed: AppClient, fresh: Fresh) -> None:
    _check(keyed, fresh(id="b", key="C-9", source="hubspot"), {"model": "gpt-4o", "call_id": "call-2"})

    lineage = keyed.get("/v1/lineage/customer/C-9", headers=_as("dashboard")).json()

    assert [call["saw_entity"] for call in lineage["model_calls"]] == [False]


@pytest.mark.parametrize("body", [{"model": "litellm"}, {"call_id": "c1", "model": "m"}])
def test_a_link_without_extra_members_is_answered_with_an_empty_extra(
    keyed: AppClient, fresh: Fresh, body: dict[str, str]
) -> None:
    """Integrations link calls with nothing else to say: 200 (it was a 500), the first time and again."""
    run_id = _check(keyed, fresh())

    first = keyed.post(f"/v1/runs/{run_id}/consumption", json=body, headers=_as("support-bot"))
    again = keyed.post(f"/v1/runs/{run_id}/consumption", json=body, headers=_as("support-bot"))

    assert (first.status_code, again.status_code) == (200, 200), first.text
    linked = first.json()
    assert (linked["run_id"], linked["model"], linked["call_id"]) == (run_id, body["model"], body.get("call_id"))
    assert (linked["extra"], again.json()["extra"]) == ({}, {})


def test_linking_an_unknown_run_is_a_404_problem(keyed: AppClient) -> None:
    response = keyed.post("/v1/runs/no-such-run/consumption", json={"model": "claude"}, headers=_as("support-bot"))

    body = _problem(response, 404)
    assert "no run 'no-such-run'" in body["detail"]


@pytest.mark.parametrize(("name", "status"), [("dashboard", 403), ("erp-sync", 403), (None, 401)])
def test_only_pipelines_and_admins_link_consumption(
    keyed: AppClient, fresh: Fresh, name: str | None, status: int
) -> None:
    run_id = _check(keyed, fresh())

    response = keyed.post(f"/v1/runs/{run_id}/consumption", json={"model": "claude"}, headers=_as(name) if name else {})

    _problem(response, status)


@pytest.mark.parametrize("body", [{}, {"model": ""}, {"model": "claude", "call_id": 7}, ["claude"]])
def test_a_consumption_link_of_the_wrong_shape_is_a_422(keyed: AppClient, fresh: Fresh, body: Any) -> None:
    run_id = _check(keyed, fresh())

    _problem(keyed.post(f"/v1/runs/{run_id}/consumption", json=body, headers=_as("support-bot")), 422)


def test_the_openapi_document_has_the_three_endpoints_with_examples(keyed: AppClient) -> None:
    document = keyed.get("/openapi.json").json()

    paths = document["paths"]
    assert "post" in paths["/v1/changes"]
    assert "post" in paths["/v1/sources/{source}/heartbeats"]
    assert "post" in paths["/v1/runs/{run_id}/consumption"]
    schemas = document["components"]["schemas"]
    for name in ("Change", "Heartbeat", "HeartbeatStored", "Consumption", "ConsumptionLinked", "EntityHistory"):
        assert schemas[name].get("examples"), name
    forbidden = paths["/v1/changes"]["post"]["responses"]["403"]["content"]
    assert list(forbidden) == [PROBLEM]
