"""The OpenAPI page (/docs) in a real browser: every endpoint renders, with nothing fetched from the internet."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_the_docs_page_renders_every_endpoint_offline(server: tuple[str, Path], browser: Any) -> None:
    base, _ = server
    page = browser.new_page()
    foreign: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: foreign.append(request.url) if not request.url.startswith(base) else None)
    page.on("requestfailed", lambda request: failed.append(request.url))

    page.goto(f"{base}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)

    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/v1/check", "/v1/changes", "/v1/runs", "/v1/health", "/v1/policy", "/metrics", "/readyz"} <= {
        path.replace("\u200b", "") for path in paths
    }
    page.locator(".opblock-summary-path", has_text="/v1/check").first.click()
    page.wait_for_selector(".opblock-body .example", timeout=10_000)
    assert "support-bot" in page.locator(".opblock-body").first.inner_text()
    assert foreign == []
    assert failed == []
    page.close()


def test_the_docs_page_shows_where_a_check_leads_and_why_it_may_be_refused(
    server: tuple[str, Path], browser: Any
) -> None:
    base, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)

    page.locator(".opblock-summary-path", has_text="/v1/check").first.click()
    check = page.locator(".opblock").filter(has=page.locator(".opblock-summary-path", has_text="/v1/check")).first
    check.locator("tr.response[data-code='200'] .response-col_links").wait_for(timeout=10_000)

    links = check.locator("tr.response[data-code='200'] .response-col_links").inner_text()
    expected = {
        "GetRun": "GET /v1/runs/{run_id}",
        "LinkConsumption": "POST /v1/runs/{run_id}/consumption",
        "EntityLineage": "GET /v1/lineage/{object}/{key}",
    }
    for name, operation in expected.items():
        assert name in links
        assert operation in links
    refused = check.locator("tr.response[data-code='413']").inner_text()
    assert "urn:freshguard:problem:too-many-records" in refused
    page.close()
