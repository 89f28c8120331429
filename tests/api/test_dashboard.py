"""The dashboard at /: every page over a day of seeded history, its login, its forms and what it escapes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api import Settings, create_app
from api.dashboard.auth import COOKIE
from guard.lineage.tables import alert_outbox, state_changes
from tests.api.conftest import auth_as, key_of, seed_store
from tests.serving import AppClient

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store holding a day of history from scripts/seed_operations.py (incidents included)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('seeded') / 'lineage.db'}"
    seed_store(url)
    return url


@pytest.fixture
def open_board(settings: Settings, seeded: str) -> Iterator[AppClient]:
    with AppClient(create_app(settings.model_copy(update={"database_url": seeded}))) as client:
        yield client


@pytest.fixture
def keyed_board(settings: Settings, seeded: str, keys_file: Path) -> Iterator[AppClient]:
    update = {"database_url": seeded, "keys_file": keys_file}
    with AppClient(create_app(settings.model_copy(update=update)), base_url="http://fg.test") as client:
        yield client


def test_the_overview_says_each_state_in_words_and_who_was_told(open_board: AppClient) -> None:
    page = open_board.get("/", headers=HTML)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "sap → customer" in text
    assert "✕ Breached" in text  # a word and an icon, not colour alone
    assert "behind by 3h" in text  # durations as the API's findings word them
    assert "agreed 15m" in text
    assert "OPS_WEBHOOK_URL" in text  # the alert channel that cannot deliver is flagged
    assert "✓ Healthy" in text
    assert "Other integration points" in text
    assert "Open incidents" in text
    assert "How states are decided" in text
    assert '<meta http-equiv="refresh" content="60">' in text


@pytest.mark.parametrize(
    "path",
    [
        "/", "/points/sap/customer", "/points/sap/customer?window=7d", "/points/stripe/invoice?window=1h",
        "/points/warehouse/customer", "/incidents", "/incidents/1", "/blocked", "/blocked?source=sap&reason=STALE",
        "/blocked?object=customer&page=2", "/lineage", "/lineage/customer/C-1203", "/lineage/customer/nobody",
        "/policy", "/login",
    ],
)  # fmt: skip
def test_every_page_renders_over_seeded_history(open_board: AppClient, path: str) -> None:
    page = open_board.get(path, headers=HTML)

    assert page.status_code == 200, page.text[:500]
    assert "<html" in page.text
    assert "Traceback" not in page.text


def test_a_run_page_draws_the_graph_from_source_to_model_call(open_board: AppClient) -> None:
    run_id = open_board.get("/v1/runs", params={"pipeline": "support-bot", "limit": 1}).json()["runs"][0]["run_id"]

    page = open_board.get(f"/runs/{run_id}", headers=HTML)

    assert page.status_code == 200
    assert "<svg" in page.text
    for column in (">source<", ">records<", ">run<", ">model call<"):
        assert column in page.text
    assert "gpt-4o-2024-08-06" in page.text


def test_an_unknown_page_or_point_is_an_html_page_for_people_and_a_problem_for_programs(open_board: AppClient) -> None:
    for path in ("/points/sap/lead", "/runs/nope", "/incidents/999"):
        page = open_board.get(path, headers=HTML)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Back to the overview" in page.text
    api = open_board.get("/v1/runs/nope")
    assert api.headers["content-type"] == "application/problem+json"


def test_with_keys_a_page_asks_for_a_login_and_a_viewer_key_opens_it(keyed_board: AppClient) -> None:
    asked = keyed_board.get("/incidents", headers=HTML, follow_redirects=False)
    assert (asked.status_code, asked.headers["location"]) == (303, "/login?next=%2Fincidents")
    assert "Paste a <strong>viewer</strong> API key" in keyed_board.get("/login", headers=HTML).text

    origin = {"origin": "http://fg.test"}
    wrong = keyed_board.post("/login", data={"key": "guess", "next": "/incidents"}, headers=origin,
                             follow_redirects=False)  # fmt: skip
    assert "not+one+this+service+accepts" in wrong.headers["location"]
    logged = keyed_board.post("/login", data={"key": key_of("dashboard"), "next": "/incidents"}, headers=origin,
                              follow_redirects=False)  # fmt: skip
    assert (logged.status_code, logged.headers["location"]) == (303, "/incidents")
    cookie = logged.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()

    page = keyed_board.get("/incidents", headers=HTML)
    assert page.status_code == 200
    assert "dashboard (viewer)" in page.text
    # The cookie is for pages only: the API still wants the key in a header.
    assert keyed_board.get("/v1/runs").status_code == 401


def test_a_source_key_cannot_read_the_dashboard(keyed_board: AppClient) -> None:
    keyed_board.cookies.set(COOKIE, key_of("erp-sync"))

    page = keyed_board.get("/", headers=HTML, follow_redirects=False)

    assert page.status_code == 303
    assert "cannot+read+the+dashboard" in page.headers["location"]


def test_an_operator_acknowledges_from_the_dashboard_but_not_from_another_site(keyed_board: AppClient) -> None:
    keyed_board.cookies.set(COOKIE, key_of("dashboard"))
    incident = keyed_board.get("/v1/incidents", params={"state": "open"}, headers=auth_as("dashboard")).json()[
        "incidents"
    ][0]
    path = f"/incidents/{incident['id']}/acknowledge"

    forged = keyed_board.post(path, headers={"origin": "http://evil.example"}, follow_redirects=False)
    unsigned = keyed_board.post(path, follow_redirects=False)
    done = keyed_board.post(path, headers={"origin": "http://fg.test", "referer": "http://fg.test/incidents"},
                            follow_redirects=False)  # fmt: skip

    assert forged.status_code == 403
    assert unsigned.status_code == 403
    assert (done.status_code, done.headers["location"]) == (303, "http://fg.test/incidents")
    after = keyed_board.get(f"/v1/incidents/{incident['id']}", headers=auth_as("dashboard")).json()
    assert after["acknowledged_by"] == "dashboard"


def test_a_pipeline_key_reads_but_cannot_acknowledge(keyed_board: AppClient) -> None:
    keyed_board.cookies.set(COOKIE, key_of("support-bot"))

    assert keyed_board.get("/", headers=HTML).status_code == 200
    refused = keyed_board.post("/incidents/1/acknowledge", headers={"origin": "http://fg.test"})
    assert refused.status_code == 403


def test_logging_out_forgets_the_key(keyed_board: AppClient) -> None:
    keyed_board.cookies.set(COOKIE, key_of("dashboard"))

    out = keyed_board.post("/logout", headers={"origin": "http://fg.test"}, follow_redirects=False)

    assert out.status_code == 303
    assert f'{COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_login_never_redirects_to_another_site(keyed_board: AppClient, target: str) -> None:
    logged = keyed_board.post("/login", data={"key": key_of("dashboard"), "next": target},
                              headers={"origin": "http://fg.test"}, follow_redirects=False)  # fmt: skip
    assert logged.headers["location"] == "/"


def test_what_clients_send_is_escaped_on_every_page(settings: Settings, fresh: Any) -> None:
    hostile = '<script>alert("key")</script>'
    with AppClient(create_app(settings)) as client:
        run_id = client.post("/v1/check", json={"pipeline": "p<b>", "records": [fresh(key=hostile)]}).json()["run_id"]
        pages = [client.get(path, headers=HTML).text for path in (f"/runs/{run_id}", "/", "/lineage")]
        entity = client.get(f"/lineage/customer/{hostile}", headers=HTML).text

    for text in [*pages, entity]:
        assert "<script>alert" not in text
    assert "&lt;script&gt;" in pages[0]


def test_an_operator_re_checks_every_sla_now(open_board: AppClient) -> None:
    assert "Re-check now" in open_board.get("/", headers=HTML).text

    done = open_board.post("/evaluate", headers={"origin": "http://127.0.0.1"}, follow_redirects=False)
    forged = open_board.post("/evaluate", headers={"origin": "http://evil.example"}, follow_redirects=False)

    assert (done.status_code, done.headers["location"]) == (303, "/")
    assert forged.status_code == 403


def test_the_api_the_pages_and_the_alerts_agree_on_an_incidents_impact(open_board: AppClient, seeded: str) -> None:
    incidents = open_board.get("/v1/incidents").json()["incidents"]
    recovered = next(i for i in incidents if not i["open"])
    touched = next(i for i in incidents if i["open"] and i["model_calls_affected"] > 0)
    overview = open_board.get("/", headers=HTML).text
    for incident in (recovered, touched):
        detail = open_board.get(f"/v1/incidents/{incident['id']}").json()
        let_through = [run for run in detail["impact"] if run["allowed"] + run["warned"] > 0]
        # counted again here, from the listed checks: what each figure means
        assert detail["model_calls_affected"] == sum(len(run["model_calls"]) for run in let_through) > 0
        assert detail["runs_affected"] == len(let_through)
        assert detail["records_let_through"] == sum(run["allowed"] + run["warned"] for run in detail["impact"])
        page = open_board.get(f"/incidents/{incident['id']}", headers=HTML).text
        assert _impact_figures(page) == {
            "model_calls": detail["model_calls_affected"],
            "records_let_through": detail["records_let_through"],
            "checks_let_through": detail["runs_affected"],
        }
    card = overview[overview.index(f'data-incident="{touched["id"]}"') :]
    assert _impact_figures(card)["model_calls"] == touched["model_calls_affected"]
    # The alert sent when the recovered incident closed carries the same figures (guard.impact, once).
    engine = sa.create_engine(seeded)
    with engine.connect() as conn:
        documents = [
            row.payload
            for row in conn.execute(
                sa.select(alert_outbox.c.payload)
                .join(state_changes, state_changes.c.id == alert_outbox.c.change_id)
                .where(state_changes.c.state == "healthy", state_changes.c.source == recovered["source"],
                       state_changes.c.object == recovered["object"])
            )
        ]  # fmt: skip
    engine.dispose()
    closing = [d for d in documents if (d["incident"] or {}).get("id") == recovered["id"]]
    assert closing != []
    assert closing[0]["incident"]["impact"]["model_calls"] == recovered["model_calls_affected"]
    assert closing[0]["incident"]["impact"]["records_let_through"] == recovered["records_let_through"]


def _impact_figures(html: str) -> dict[str, int]:
    """The first impact figures a page shows (data-impact marks them)."""
    found: dict[str, int] = {}
    for name, value in re.findall(r'data-impact="(\w+)">(\d+)<', html):
        found.setdefault(name, int(value))
    return found
