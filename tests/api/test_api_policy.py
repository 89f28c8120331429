"""Policy publishing: GET/PUT /v1/policy and the version history, applied at once in every worker."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from api import Settings, create_app
from tests.api.conftest import auth_as
from tests.conftest import EXAMPLE_POLICY
from tests.serving import AppClient

Fresh = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"
YAML = {"content-type": "application/yaml"}


def policy_text(version: int, **changes: Any) -> str:
    """The example policy as YAML at `version`, with top-level members replaced."""
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["version"] = version
    document.update(changes)
    return yaml.safe_dump(document, sort_keys=False)


def tighter(version: int, max_age: str = "10m") -> str:
    """The example policy at `version` with the customer freshness limit set to `max_age`."""
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["version"] = version
    document["objects"]["customer"]["max_age"] = max_age
    document["objects"]["customer"].pop("warn_age")
    return yaml.safe_dump(document, sort_keys=False)


def test_the_policy_file_is_published_as_the_first_version_at_start(client: AppClient) -> None:
    body = client.get("/v1/policy").json()
    assert (body["name"], body["version"]) == ("support-assistant", 1)
    assert body["published_by"] == f"file:{EXAMPLE_POLICY}"
    assert body["text"] == EXAMPLE_POLICY.read_text()
    assert body["document"]["objects"]["customer"]["owner"] == "salesforce"
    history = client.get("/v1/policy/versions").json()
    assert history["active_version"] == 1
    assert [v["version"] for v in history["versions"]] == [1]


def test_a_published_version_applies_to_the_next_check(client: AppClient, fresh: Fresh) -> None:
    record = fresh(observed_at=None)  # measured from updated_at: 7 minutes old, fine under 1h
    before = client.post("/v1/check", json={"pipeline": "p", "records": [record]}).json()
    assert (before["policy"]["version"], before["verdict"]) == (1, "pass")

    published = client.put("/v1/policy", content=tighter(2, max_age="5m"), headers=YAML)

    assert published.status_code == 200, published.text
    assert published.json()["version"] == 2
    assert published.json()["previous_version"] == 1
    after = client.post("/v1/check", json={"pipeline": "p", "records": [record]}).json()
    assert after["policy"]["version"] == 2
    assert [r["code"] for r in after["records"][0]["reasons"]] == ["STALE"]
    run = client.get(f"/v1/runs/{after['run_id']}").json()
    assert run["policy_version"] == 2


def test_the_history_keeps_every_version_with_publisher_hash_and_text(client: AppClient) -> None:
    assert client.put("/v1/policy", content=tighter(2), headers=YAML).status_code == 200
    document = yaml.safe_load(tighter(5))
    assert client.put("/v1/policy", json=document).status_code == 200

    history = client.get("/v1/policy/versions").json()

    assert history["active_version"] == 5
    assert [(v["version"], v["media_type"]) for v in history["versions"]] == [
        (5, "application/json"),
        (2, "application/yaml"),
        (1, "application/yaml"),
    ]
    assert all(len(v["content_hash"]) == 64 for v in history["versions"])
    assert history["versions"][0]["published_by"] == "(open mode: no API keys configured)"
    second = client.get("/v1/policy/versions/2").json()
    assert second["text"] == tighter(2)
    assert second["document"]["objects"]["customer"]["max_age"] == "10m"
    missing = client.get("/v1/policy/versions/4")
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)


@pytest.mark.parametrize("version", [1, 0])
def test_a_version_that_is_not_higher_is_refused_with_409(client: AppClient, version: int) -> None:
    response = client.put("/v1/policy", content=policy_text(version), headers=YAML)

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert "version 1 is already published" in response.json()["detail"]
    assert "publish it as version 2" in response.json()["detail"]
    assert client.get("/v1/policy").json()["version"] == 1


@pytest.mark.parametrize(
    ("text", "media_type", "where", "words"),
    [
        (
            policy_text(2).replace("owner: salesforce", "owner: salesforc", 1),
            "application/yaml",
            ["body", "objects", "customer", "owner"],
            "did you mean 'salesforce'",
        ),
        (policy_text(2).replace("max_age: 1h", "max_age: soon", 1), "application/yaml", None, "max_age"),
        ("policy: [unclosed", "application/yaml", ["body"], "not valid YAML"),
        ('{"policy": "a", "policy": "b", "version": 2}', "application/json", ["body", "policy"], "appears twice"),
        ('{"policy": "a", "version": 2,', "application/json", ["body"], "not valid JSON"),
        ("[1, 2]", "application/json", None, ""),
    ],
)
def test_a_policy_that_does_not_load_is_refused_with_every_path(
    client: AppClient, text: str, media_type: str, where: list[str] | None, words: str
) -> None:
    response = client.put("/v1/policy", content=text, headers={"content-type": media_type})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert words in problem["detail"]
    if where is not None:
        assert where in [error["loc"] for error in problem["errors"]]
    assert client.get("/v1/policy").json()["version"] == 1


def test_a_policy_whose_signing_key_is_not_set_is_refused_before_it_is_published(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_SIGNING_KEY")
    response = client.put("/v1/policy", content=policy_text(2), headers=YAML)

    assert response.status_code == 422
    assert "STRIPE_SIGNING_KEY" in response.json()["detail"]
    assert [v["version"] for v in client.get("/v1/policy/versions").json()["versions"]] == [1]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"content-type": "text/csv"}, b"policy: x", 415),
        ({}, b"policy: x", 415),
        ({"content-type": "application/yaml"}, b"policy: \xff\xfe", 400),
    ],
)
def test_a_body_that_is_not_a_policy_document_is_refused(
    client: AppClient, headers: dict[str, str], body: bytes, status: int
) -> None:
    response = client.put("/v1/policy", content=body, headers=headers)
    assert (response.status_code, response.headers["content-type"]) == (status, PROBLEM)


@pytest.mark.parametrize(("name", "status"), [("support-bot", 403), ("dashboard", 403), ("erp-sync", 403)])
def test_only_an_admin_key_publishes(keyed: AppClient, name: str, status: int) -> None:
    refused = keyed.put("/v1/policy", content=policy_text(2), headers={**YAML, **auth_as(name)})
    assert refused.status_code == status
    assert "admin" in refused.json()["detail"]
    assert keyed.get("/v1/policy", headers=auth_as(name)).status_code == 200  # every role may read it

    published = keyed.put("/v1/policy", content=policy_text(2), headers={**YAML, **auth_as("ops-admin")})

    assert published.status_code == 200
    assert published.json()["published_by"] == "ops-admin"
    assert keyed.get("/v1/policy", headers=auth_as("dashboard")).json()["version"] == 2


def test_a_published_version_outlives_a_restart(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with AppClient(create_app(settings)) as first:
        assert first.put("/v1/policy", content=tighter(2), headers=YAML).status_code == 200

    with caplog.at_level(logging.WARNING, logger="freshguard.api"), AppClient(create_app(settings)) as second:
        body = second.get("/v1/policy").json()

    assert body["version"] == 2
    assert any("is version 1, but version 2" in message for message in caplog.messages)


def test_a_newer_policy_file_is_published_at_start(settings: Settings, tmp_path: Path) -> None:
    with AppClient(create_app(settings)) as first:
        assert first.put("/v1/policy", content=tighter(2), headers=YAML).status_code == 200
    newer = tmp_path / "policy-v3.yaml"
    newer.write_text(policy_text(3))

    with AppClient(create_app(settings.model_copy(update={"policy": newer}))) as second:
        versions = second.get("/v1/policy/versions").json()["versions"]

    assert [(v["version"], v["published_by"]) for v in versions[:2]] == [
        (3, f"file:{newer}"),
        (2, versions[1]["published_by"]),
    ]


@pytest.fixture
def two_workers(settings: Settings) -> Iterator[tuple[AppClient, AppClient]]:
    """Two apps on one lineage store, as two worker processes of one service are."""
    with AppClient(create_app(settings)) as one, AppClient(create_app(settings)) as other:
        yield one, other


def test_a_version_published_through_one_worker_applies_in_the_other(
    two_workers: tuple[AppClient, AppClient], fresh: Fresh
) -> None:
    one, other = two_workers
    assert one.put("/v1/policy", content=tighter(2, max_age="5m"), headers=YAML).status_code == 200

    checked = other.post("/v1/check", json={"pipeline": "p", "records": [fresh(observed_at=None)]}).json()

    assert checked["policy"]["version"] == 2
    assert checked["verdict"] == "blocked"
    assert other.get("/v1/policy").json()["version"] == 2
    # The other worker knows it now, so a version that is not higher is refused there too.
    assert other.put("/v1/policy", content=tighter(2), headers=YAML).status_code == 409


def test_checks_running_while_versions_are_published_all_answer(client: AppClient, fresh: Fresh) -> None:
    """No check in flight is dropped or fails while the policy changes under it; each names its version."""
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def keep_checking() -> None:
        while not stop.is_set():
            response = client.post("/v1/check", json={"pipeline": "p", "records": [fresh()] * 1})
            if response.status_code != 200:
                failures.append(response.text)
            else:
                seen.append(response.json()["policy"]["version"])

    workers = [threading.Thread(target=keep_checking) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        for version in range(2, 8):
            assert client.put("/v1/policy", content=policy_text(version), headers=YAML).status_code == 200
    finally:
        stop.set()
        for worker in workers:
            worker.join()

    assert failures == []
    assert set(seen) <= set(range(1, 8))
    assert client.post("/v1/check", json={"pipeline": "p", "records": [fresh()]}).json()["policy"]["version"] == 7


def test_the_openapi_page_documents_both_body_types(client: AppClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/policy"]["put"]
    assert set(operation["requestBody"]["content"]) == {"application/yaml", "application/json"}
    assert {"200", "403", "409", "415", "422"} <= set(operation["responses"])
    assert json.dumps(operation["responses"]["409"]).count(PROBLEM) == 1
