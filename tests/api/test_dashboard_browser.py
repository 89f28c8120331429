"""The dashboard in a real browser (Chromium), at desktop (1400×1000) and phone (390×844) sizes.

Log in, read the overview, open a point, acknowledge; every page fits the screen; the impact figures
are the API's; the lineage graph's words fit their boxes; incidents and points link both ways.
"""

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


DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


@pytest.fixture
def board(tmp_path: Path) -> Iterator[str]:
    """`freshguard serve` with a viewer key over a seeded store of its own (for tests that change it)."""
    yield from _serve_seeded(tmp_path)


@pytest.fixture(scope="module")
def shared_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same, shared by the tests of this module that only read."""
    yield from _serve_seeded(tmp_path_factory.mktemp("board"))


def _serve_seeded(tmp_path: Path) -> Iterator[str]:
    """`freshguard serve` with a viewer key over a seeded store; its base URL."""
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    seed_store(url)
    port = free_port()
    env = {**os.environ, "STRIPE_SIGNING_KEY": SAMPLE_KEY, "FRESHGUARD_WATCH_EVERY_S": "0",
           "FRESHGUARD_API_KEYS": f"ops-board:viewer:{hash_key(VIEWER_KEY)}"}  # fmt: skip
    env.pop("OPS_WEBHOOK_URL", None)
    command = freshguard_serve("--policy", str(EXAMPLE_POLICY), "--database", url, port=port)
    with serving(command, port=port, env=env, log=tmp_path / "serve.log") as served:
        yield served.base
    assert "Traceback" not in served.log_text(), served.log_text()


def logged_in(browser: Any, board: str, size: dict[str, int]) -> Any:
    """A page of a browser context at `size`, logged in with the viewer key."""
    page = browser.new_context(viewport=size).new_page()
    page.goto(f"{board}/login")
    page.fill("#key", VIEWER_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector(".tile")
    return page


def api(page: Any, board: str, path: str) -> Any:
    answer = page.request.get(f"{board}{path}", headers={"Authorization": f"Bearer {VIEWER_KEY}"})
    assert answer.ok, answer.text()
    return answer.json()


def click_on(page: Any, element: Any) -> None:
    """Click the middle of `element` as a person would (whatever covers it takes the click)."""
    element.scroll_into_view_if_needed()
    box = element.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def overflow(page: Any) -> int:
    """How far the page is wider than the screen (0: no horizontal scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


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

    tiles.first.locator("h3 a").click()
    page.wait_for_selector("svg.chart")
    assert page.locator("svg.chart").count() >= 3  # lag, block rate, reasons
    assert "agreed 15m" in page.locator("svg.chart").first.inner_html()

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


PAGES = ["/", "/incidents", "/incidents/1", "/incidents/2", "/points/sap/customer", "/points/sap/customer?window=7d",
         "/points/warehouse/product", "/points/salesforce/customer", "/blocked", "/lineage", "/policy"]  # fmt: skip


@pytest.mark.parametrize("size", SIZES)
def test_every_page_fits_the_screen_and_wide_content_scrolls_in_its_own_box(
    shared_board: str, browser: Any, size: dict[str, int]
) -> None:
    page = logged_in(browser, shared_board, size)
    run_id = api(page, shared_board, "/v1/runs?limit=1")["runs"][0]["run_id"]
    for path in [*PAGES, f"/runs/{run_id}"]:
        page.goto(f"{shared_board}{path}")
        assert overflow(page) == 0, f"{path} is {overflow(page)} px wider than a {size['width']} px screen"
        sizes = page.evaluate(
            "[...document.querySelectorAll('svg.chart text')].filter(t => t.getClientRects().length)"
            ".map(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)"
        )
        assert all(11.5 <= px <= 15 for px in sizes), (path, sorted(set(sizes)))  # chart text keeps its size
    page.close()


@pytest.mark.parametrize("size", SIZES)
def test_the_impact_on_the_pages_is_the_apis_and_open_incidents_come_first(
    shared_board: str, browser: Any, size: dict[str, int]
) -> None:
    page = logged_in(browser, shared_board, size)
    listed = api(page, shared_board, "/v1/incidents")["incidents"]
    opened = [i for i in listed if i["open"]]
    assert opened != []

    page.goto(f"{shared_board}/")
    first_incident = page.locator("article.incident").first.bounding_box()
    first_tile = page.locator(".tile").first.bounding_box()
    assert first_incident["y"] < first_tile["y"]  # open incidents lead, then the tiles
    acknowledge = page.locator("article.incident button", has_text="Acknowledge").first.bounding_box()
    assert acknowledge["y"] + acknowledge["height"] <= size["height"]  # on the first screen
    assert acknowledge["x"] + acknowledge["width"] <= size["width"]
    for incident in opened:
        card = page.locator(f'article.incident[data-incident="{incident["id"]}"]')
        assert int(card.locator('[data-impact="model_calls"]').inner_text()) == incident["model_calls_affected"]
        assert int(card.locator('[data-impact="records_let_through"]').inner_text()) == incident["records_let_through"]
        assert "OPS_WEBHOOK_URL is not set" in card.inner_text()  # the undelivered alert, flagged
    assert page.locator("[data-config-warning]").is_visible()
    for incident in listed:
        page.goto(f"{shared_board}/incidents/{incident['id']}")
        assert int(page.locator('.lead [data-impact="model_calls"]').inner_text()) == incident["model_calls_affected"]
        assert int(page.locator('.lead [data-impact="checks_let_through"]').inner_text()) == incident["runs_affected"]
    page.close()


@pytest.mark.parametrize("size", SIZES)
def test_the_lineage_graph_keeps_every_word_inside_its_box(
    shared_board: str, browser: Any, size: dict[str, int]
) -> None:
    page = logged_in(browser, shared_board, size)
    run_id = api(page, shared_board, "/v1/runs?limit=1&pipeline=support-bot")["runs"][0]["run_id"]
    page.goto(f"{shared_board}/runs/{run_id}")
    boxes = page.evaluate("""() => [...document.querySelectorAll('svg.graph g.node-box')].map(g => {
        const rect = g.querySelector('rect').getBBox();
        return {rect: [rect.x, rect.y, rect.width, rect.height],
                texts: [...g.querySelectorAll('text')].map(t => { const b = t.getBBox();
                    return [t.textContent, b.x, b.y, b.width, b.height]; })};
    })""")
    viewbox = page.evaluate("document.querySelector('svg.graph').viewBox.baseVal.width")
    assert len(boxes) >= 4  # sources, groups, the run, the model call
    for box in boxes:
        x, y, width, height = box["rect"]
        assert x + width <= viewbox  # nothing drawn past the picture
        for text, tx, ty, tw, th in box["texts"]:
            assert not text.endswith("…")
            assert x < tx, f"{text!r} starts before its box"
            assert tx + tw <= x + width - 2, f"{text!r} runs past its box"
            assert y <= ty, f"{text!r} rises above its box"
            assert ty + th <= y + height + 1, f"{text!r} spills below its box"
    labels = page.locator("svg.graph").inner_html()
    assert "from sap" in labels  # each group names its source
    assert "chatcmpl-" in labels
    page.close()


@pytest.mark.parametrize("size", SIZES)
def test_incidents_and_points_link_both_ways_and_whole_rows_are_links(
    board: str, browser: Any, size: dict[str, int]
) -> None:
    page = logged_in(browser, board, size)
    card = page.locator("article.incident").first
    number = card.get_attribute("data-incident")
    click_on(page, card.locator(".since"))  # not on a link: the whole card is one
    page.wait_for_url(f"{board}/incidents/{number}")
    page.locator("h1 a").click()  # the incident names its integration point ...
    page.wait_for_url(f"{board}/points/**")
    page.locator(f'a.incident-link[href="/incidents/{number}"]').first.click()  # ... which links back
    page.wait_for_url(f"{board}/incidents/{number}")

    page.goto(f"{board}/incidents")
    click_on(page, page.locator(f'tr[data-incident="{number}"] td').nth(1))  # a cell, not the link
    page.wait_for_url(f"{board}/incidents/{number}")
    page.locator("button", has_text="Acknowledge").click()
    page.wait_for_load_state()
    badge = page.locator("h1 .state").inner_text()
    assert "ACKNOWLEDGED" in badge.upper()  # the badge follows the acknowledgement
    assert page.locator("button", has_text="Acknowledge").count() == 0

    recovered = next(i for i in api(page, board, "/v1/incidents")["incidents"] if not i["open"])
    page.goto(f"{board}/incidents/{recovered['id']}")
    assert "RECOVERED" in page.locator("h1 .state").inner_text().upper()
    assert page.locator("button", has_text="Acknowledge").count() == 0  # nothing to acknowledge once recovered
    page.close()


def test_entity_lookup_ignores_case_and_suggests_keys(shared_board: str, browser: Any) -> None:
    page = logged_in(browser, shared_board, PHONE)
    key = api(page, shared_board, "/v1/runs?limit=1&pipeline=support-bot")["runs"][0]["run_id"]
    decided = api(page, shared_board, f"/v1/runs/{key}")["decisions"]
    known = next(d["key"] for d in decided if d["object"] == "customer")
    page.goto(f"{shared_board}/lineage")
    page.select_option("select[name=object]", "customer")
    page.fill("input[name=key]", known.lower())
    page.click("form.filters button")
    page.wait_for_url(f"{shared_board}/lineage/customer/{known}")  # found whatever the case
    assert page.locator("table").count() >= 1

    fragment = known.lower().removeprefix("c")  # "-1203": no key is that, keys hold it
    page.goto(f"{shared_board}/lineage/customer/{fragment}")
    suggestions = page.locator("ul.suggestions a")
    assert suggestions.count() >= 1
    assert all(fragment in text.lower() for text in suggestions.all_inner_texts())
    suggestions.first.click()
    page.wait_for_url(f"{shared_board}/lineage/customer/C-*")
    assert page.locator("h2", has_text="Every decision").count() == 1
    assert overflow(page) == 0
    page.close()
