"""A store that cannot be used says so with a StoreError that names it, and never shows its password."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from guard import Guard, GuardError, LineageStore, Policy, StoreError
from tests.conftest import NOW, RecordFactory
from tests.lineage.lineage_helpers import execute, scalar

UNSUPPORTED = [
    "mysql://user:secret@127.0.0.1/lineage",
    "mysql+pymysql://user:secret@127.0.0.1/lineage",
    "oracle://user:secret@127.0.0.1/lineage",
    "postgresql+psycopg2://user:secret@127.0.0.1/lineage",
    "sqlite+aiosqlite:///lineage.db",
]


@pytest.mark.parametrize("url", UNSUPPORTED)
def test_an_unsupported_database_is_refused_with_what_would_do(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        LineageStore(url)

    message = str(caught.value)
    assert "lineage store" in message
    assert "SQLite" in message
    assert "postgresql+psycopg://" in message
    assert "secret" not in message


@pytest.mark.parametrize("url", ["not a database URL", "postgresql+psycopg://user:secret@127.0.0.1:no-port/x"])
def test_a_url_that_does_not_parse_is_refused(url: str) -> None:
    with pytest.raises(StoreError, match="does not parse") as caught:
        LineageStore(url)

    assert "lineage store" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        LineageStore("postgresql+psycopg://user:secret@127.0.0.1:1/lineage")

    message = str(caught.value)
    assert "cannot reach the lineage store postgresql+psycopg://user:***@127.0.0.1:1/lineage" in message
    assert "secret" not in message
    assert isinstance(caught.value, GuardError)


def test_a_guard_given_an_unreachable_store_raises_the_store_error(minimal_policy: Policy) -> None:
    with pytest.raises(StoreError, match="lineage store") as caught:
        Guard(minimal_policy, store="postgresql+psycopg://user:secret@127.0.0.1:1/lineage")

    assert "secret" not in str(caught.value)


@pytest.mark.postgres
def test_a_missing_database_is_a_store_error_without_the_password(postgres_url: str) -> None:
    missing = make_url(postgres_url).set(database="freshguard_no_such_database", password="secret")

    with pytest.raises(StoreError) as caught:
        LineageStore(missing.render_as_string(hide_password=False))

    message = str(caught.value)
    assert "freshguard_no_such_database" in message
    assert "does not exist" in message
    assert "secret" not in message


def test_a_sqlite_file_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot reach the lineage store sqlite:///"):
        LineageStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'lineage.db'}")


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("spelling", ["postgresql", "postgres"])
def test_postgresql_urls_without_a_driver_use_psycopg(store_url: str, spelling: str) -> None:
    url = make_url(store_url).set(drivername=spelling).render_as_string(hide_password=False)

    store = LineageStore(url)
    try:
        assert (store.dialect, store.engine.dialect.driver) == ("postgresql", "psycopg")
    finally:
        store.close()


def test_a_failed_write_leaves_nothing_behind(minimal_policy: Policy, store_url: str, record: RecordFactory) -> None:
    """The run row and its records are one transaction: when the records cannot be written, neither is the run."""
    with Guard(minimal_policy, store=store_url) as guard:
        execute(store_url, "DROP TABLE run_records")

        with pytest.raises(StoreError, match="failed to record a check") as caught:
            guard.check([record()], pipeline="rag", now=NOW)

    assert "run_records" in str(caught.value)
    assert scalar(store_url, "SELECT count(*) FROM runs") == 0
    assert scalar(store_url, "SELECT count(*) FROM watermarks") == 0


def test_a_password_given_as_a_url_parameter_is_hidden_too() -> None:
    from guard.lineage._base import _safe

    shown = _safe("postgresql+psycopg://user:one@127.0.0.1/db?password=two&sslmode=require")
    assert "one" not in shown
    assert "two" not in shown
    assert "sslmode=require" in shown
