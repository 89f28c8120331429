"""The dashboard in a real browser (Chromium): log in, read the overview, open a point, acknowledge."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.keys import hash_key
from tests.api.conftest import SAMPLE_KEY, seed_store
from tests.conftest import EXAMPLE_POLICY
from tests.serving import free_port, freshguard_serve, serving

VIEWER_KEY = "vwr-browser-7c2e9a4b1d6f3e8a5c0b"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[str]:
    """`freshguard serve` with a viewer key over a seeded store; its base URL."""
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    seed_store(url)
    port = free_port()
    env = {**os.environ, "STRIPE_SIGNING_KEY": SAMPLE_KEY, "FRESHGUARD_WATCH_EVERY_S": "0",
           "FRESHGUARD_API_KEYS": f"ops-board:viewer:{hash_key(VIEWER_KEY)}"}  # fmt: skip
    command = freshguard_serve("--policy", str(EXAMPLE_POLICY), "--database", url, port=port)
    with serving(command, port=port, env=env, log=tmp_path / "serve.log") as served:
        yield served.base
    assert "Traceback" not in served.log_text(), served.log_text()


def test_an_operator_logs_in_reads_the_state_of_every_point_and_acknowledges(
    board: str, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    foreign: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: foreign.append(request.url) if not request.url.startswith(board) else None)
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    page.goto(f"{board}/")
    assert page.url.startswith(f"{board}/login")
    page.fill("#key", VIEWER_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector(".tile")

    tiles = page.locator(".tile")
    assert tiles.count() == 4  # one per SLA of the example policy
    first = tiles.first.inner_text()
    assert "sap" in first
    assert "BREACHED" in first.upper()
    assert "ops-board (viewer)" in page.locator("header").inner_text()
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    tiles.first.click()
    page.wait_for_selector("svg.chart")
    assert page.locator("svg.chart").count() >= 3  # lag, block rate, reasons
    assert "agreed 15 min" in page.locator("svg.chart").first.inner_html()

    page.goto(f"{board}/incidents")
    page.locator("button", has_text="Acknowledge").first.click()
    page.wait_for_load_state()
    assert "ops-board" in page.locator("table").inner_text()

    page.locator("header button", has_text="Log out").click()
    page.wait_for_url(f"{board}/login*")
    page.goto(f"{board}/incidents")
    assert page.url.startswith(f"{board}/login")
    assert foreign == []
    assert problems == []
    page.close()
