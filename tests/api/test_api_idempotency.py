"""`Idempotency-Key`: a retry gets the first answer and no second run; misuse is refused in words."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from api.auth import OPEN_CALLER
from api.idempotency import request_digest
from guard import Guard
from guard._timestamps import utc_now
from tests.api.conftest import auth_as
from tests.serving import AppClient

Fresh = Callable[..., dict[str, Any]]
PROBLEM = "urn:freshguard:problem:"


def _body(fresh: Fresh, pipeline: str = "support-bot") -> bytes:
    return json.dumps({"pipeline": pipeline, "records": [fresh(id="a", key="C-1"), fresh(id="b", key="C-2")]}).encode()


def _post(client: AppClient, body: bytes, key: str | None, **headers: str) -> Any:
    sent = {"content-type": "application/json", **headers, **({"Idempotency-Key": key} if key else {})}
    return client.post("/v1/check", content=body, headers=sent)


def _runs(client: AppClient) -> int:
    return len(client.get("/v1/runs").json()["runs"])


def test_a_retry_with_the_same_key_gets_the_first_answer_and_no_new_run(client: AppClient, fresh: Fresh) -> None:
    body = _body(fresh)
    first = _post(client, body, "retry-1")
    again = _post(client, body, "retry-1")

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["x-freshguard-run-id"] == first.headers["x-freshguard-run-id"] == first.json()["run_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _runs(client) == 1
    assert _post(client, body, "retry-2").json()["run_id"] != first.json()["run_id"]  # a new key is a new check
    assert _post(client, body, None).json()["run_id"] != first.json()["run_id"]
    assert _runs(client) == 3


def test_the_same_key_with_another_body_is_refused(client: AppClient, fresh: Fresh) -> None:
    assert _post(client, _body(fresh), "k-1").status_code == 200

    refused = _post(client, _body(fresh, pipeline="another"), "k-1")

    assert refused.status_code == 422
    assert refused.json()["type"] == PROBLEM + "idempotency-key-reused"
    assert "use a new key" in refused.json()["detail"]
    assert _runs(client) == 1


def test_a_repeat_while_the_first_is_still_answered_is_a_409_to_retry(client: AppClient, fresh: Fresh) -> None:
    body = _body(fresh)
    guard: Guard = client.app.state.guard  # type: ignore[attr-defined]
    assert guard.store is not None
    held = guard.store.claim_receipt(OPEN_CALLER.name, "busy", request_digest("POST", "/v1/check", body), now=utc_now())
    assert held is None  # the first request holds the key

    answer = _post(client, body, "busy")

    assert answer.status_code == 409
    assert answer.json()["type"] == PROBLEM + "idempotency-key-in-flight"
    assert answer.headers["retry-after"] == "1"
    assert _runs(client) == 0


def test_a_key_that_is_not_printable_ascii_is_a_400(client: AppClient, fresh: Fresh) -> None:
    for key in ("x" * 256, "tab\tkey"):
        answer = _post(client, _body(fresh), key)
        assert answer.status_code == 400
        assert answer.json()["type"] == PROBLEM + "idempotency-key-invalid"
    assert _runs(client) == 0


def test_keys_are_scoped_to_the_api_key(keyed: AppClient, fresh: Fresh) -> None:
    body = _body(fresh)
    as_bot = _post(keyed, body, "shared", **auth_as("support-bot"))
    as_admin = _post(keyed, body, "shared", **auth_as("ops-admin"))

    assert as_bot.status_code == as_admin.status_code == 200
    assert as_bot.json()["run_id"] != as_admin.json()["run_id"]
    assert "idempotent-replayed" not in as_admin.headers
