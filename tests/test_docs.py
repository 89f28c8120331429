"""docs/ is the reference users have: every code and notice is there, its examples are what the guard says, its
links lead somewhere, and nothing in the repository sends readers to a document they do not have."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from guard import Guard, ReasonCode, load_policy
from guard.integrations.context import notice
from tests.api.conftest import SAMPLE_KEY
from tests.conftest import EXAMPLE_POLICY, POLICIES, ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SKIPPED = {".venv", "node_modules", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}


def repository_text_files() -> list[Path]:
    suffixes = {".py", ".md", ".yaml", ".yml", ".ipynb", ".json", ".toml", ".mjs", ".html"}
    return [
        path
        for path in ROOT.rglob("*")
        if path.suffix in suffixes and path.is_file() and not SKIPPED & set(path.relative_to(ROOT).parts)
    ]


def test_nothing_cites_a_design_document_users_do_not_have() -> None:
    citing = [str(p.relative_to(ROOT)) for p in repository_text_files() if "DESIGN" + ".md" in p.read_text("utf-8")]
    assert citing == []


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_leads_to_a_file(page: Path) -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text("utf-8"))
    missing = [link for link in links if "://" not in link and not (page.parent / link).exists()]
    assert missing == []


def test_every_reason_code_and_notice_is_documented() -> None:
    text = (DOCS / "decisions.md").read_text("utf-8")
    assert [code.value for code in ReasonCode if f"`{code.value}`" not in text] == []


def _sample_decisions() -> list[tuple[str, str, str]]:
    """(code, message, notice) of every reason the guard gives the shipped sample records."""
    guard = Guard(load_policy(EXAMPLE_POLICY), environ={"STRIPE_SIGNING_KEY": SAMPLE_KEY})
    lines = (POLICIES / "support-assistant.records.jsonl").read_text("utf-8").splitlines()
    result = guard.check(
        [json.loads(line) for line in lines], pipeline="docs", now=datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    )
    return [(r.code.value, r.message, notice(d)) for d in result.decisions for r in d.reasons]


def test_the_documented_messages_and_notices_are_the_guards_own() -> None:
    """The examples in docs/decisions.md are what the guard says about policies/support-assistant.records.jsonl."""
    text = (DOCS / "decisions.md").read_text("utf-8")
    operators = text.split("## Messages, for operators")[1].split("## Notices")[0]
    documented = re.findall(r"^\| `([A-Z_]+)` \| (.+) \|$", operators, flags=re.MULTILINE)
    said = {(code, message) for code, message, _ in _sample_decisions()}
    assert len(documented) >= 14
    assert [row for row in documented if row not in said] == []
    notices = re.findall(r"^    (record withheld: .+)$", text, flags=re.MULTILINE)
    assert notices
    assert set(notices) <= {n for _, _, n in _sample_decisions()}
