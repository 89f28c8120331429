"""`check_frame`, `check` and `freshguard audit` decide every record alike: action and set of codes.

Batches are tables (one type per member and field, no member sent as null: a table cannot tell
null from absent, docs/columnar.md); supersession comes from watermarks kept in the store.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from guard import Action, Guard, InputError, Policy, ReasonCode
from guard.checks.compiled import compile_policy
from guard.cli.main import app
from guard.columnar.screen import screen_frame
from tests.columnar_batches import mixed_batch, watermarks_for
from tests.conftest import EXAMPLE_POLICY, NOW, STRIPE_KEY, ts
from tests.lineage.lineage_helpers import forget_watermarks, scalar

ENV = {"STRIPE_SIGNING_KEY": STRIPE_KEY}
batches = st.randoms(use_true_random=False).map(lambda rng: (mixed_batch(rng), rng))


def decided(guard: Guard, records: list[dict[str, Any]]) -> list[tuple[str, frozenset[str]]]:
    return [(action, frozenset(codes)) for action, codes, _ in worded(guard, records)]


def framed(guard: Guard, records: list[dict[str, Any]]) -> list[tuple[str, frozenset[str]]]:
    return [(action, frozenset(codes)) for action, codes, _ in worded_frame(guard, records)]


def worded(guard: Guard, records: list[dict[str, Any]]) -> list[tuple[str, list[str], list[str]]]:
    """Each record's action, codes and messages as `check` decides them."""
    table = guard.check(records, pipeline="diff", now=NOW).decisions
    return [(d.action.value, [r.code.value for r in d.reasons], [r.message for r in d.reasons]) for d in table]


def worded_frame(guard: Guard, records: list[dict[str, Any]]) -> list[tuple[str, list[str], list[str]]]:
    """Each record's action, codes and messages as `check_frame` decides them."""
    frame = pl.DataFrame(records, infer_schema_length=None)
    result = guard.check_frame(frame, pipeline="diff", now=NOW).decisions
    return list(result.select("action", "codes", "messages").iter_rows())


def audited(tmp: Path, records: list[dict[str, Any]], database: str | None) -> list[tuple[str, frozenset[str]]]:
    source, out = tmp / "records.parquet", tmp / "decisions.parquet"
    pl.DataFrame(records, infer_schema_length=None).write_parquet(source)
    args = ["audit", str(source), "--policy", str(EXAMPLE_POLICY), "--now", ts(NOW), "--out", str(out)]
    ran = CliRunner().invoke(app, [*args, *(["--database", database] if database else [])], env=ENV)
    assert ran.exit_code in (0, 1), ran.output
    decisions = pl.read_parquet(out)
    assert (ran.exit_code == 1) == (decisions.get_column("action") == "block").any()
    return [(action, frozenset(codes)) for action, codes in decisions.select("action", "codes").iter_rows()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=batches, pandera_threshold=st.sampled_from([1, 2000]))
def test_check_frame_decides_as_check_does_without_a_store(
    drawn: tuple[list[dict[str, Any]], random.Random], pandera_threshold: int, example_policy: Policy
) -> None:
    records, rng = drawn
    changes = watermarks_for(records, rng)
    by_check, by_frame = (Guard(example_policy, environ=ENV, pandera_threshold=pandera_threshold) for _ in range(2))
    for guard in (by_check, by_frame):
        guard.note_changes(changes)
    assert framed(by_frame, records) == decided(by_check, records)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(drawn=batches)
def test_check_frame_check_and_audit_decide_alike_with_a_store(
    drawn: tuple[list[dict[str, Any]], random.Random], example_policy: Policy, store_url: str, tmp_path: Path
) -> None:
    records, rng = drawn
    changes = watermarks_for(records, rng)
    found = []
    for way in ("check", "frame", "audit"):
        forget_watermarks(store_url)
        with Guard(example_policy, store=store_url, environ=ENV) as guard:
            guard.note_changes(changes)
            if way == "check":
                found.append(decided(guard, records))
            elif way == "frame":
                found.append(framed(guard, records))
        if way == "audit":
            found.append(audited(tmp_path, records, store_url))
    assert found[1] == found[0]
    assert found[2] == found[0]


def test_the_batches_reach_every_reason_code(example_policy: Policy) -> None:
    seen: set[str] = set()
    for seed in range(60):
        rng = random.Random(seed)
        records = mixed_batch(rng, 40)
        guard = Guard(example_policy, environ=ENV)
        guard.note_changes(watermarks_for(records, rng))
        for _, codes in framed(guard, records):
            seen |= codes
    assert seen == {code.value for code in ReasonCode}


def test_a_frame_run_is_written_as_a_check_run_is(example_policy: Policy, store_url: str) -> None:
    records = mixed_batch(random.Random(3), 300)
    with Guard(example_policy, store=store_url, environ=ENV) as guard:
        result = guard.check_frame(pl.DataFrame(records, infer_schema_length=None), pipeline="frames", now=NOW)
        run = guard.store.get_run(result.run_id) if guard.store is not None else None
    assert run is not None
    expected = (len(records), result.counts[Action.BLOCK], result.verdict.value)
    assert (run["records"], run["blocked"], run["verdict"]) == expected
    for action in Action:
        stored = scalar(store_url, "SELECT count(*) FROM run_records WHERE action = :a", a=action.value)
        assert stored == result.counts[action]
    codes = "SELECT reasons FROM run_records WHERE run_id = :run ORDER BY position"
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        stored_codes = [row[0] for row in conn.execute(sa.text(codes), {"run": result.run_id})]
    engine.dispose()
    assert stored_codes == [",".join(c) for c in result.decisions.get_column("codes").to_list()]


def test_pyarrow_tables_and_lazy_frames_are_decided_alike(example_policy: Policy) -> None:
    frame = pl.DataFrame(mixed_batch(random.Random(5), 60), infer_schema_length=None)
    guard = Guard(example_policy, environ=ENV)
    expected = guard.check_frame(frame, pipeline="t", now=NOW).decisions
    for other in (frame.to_arrow(), frame.lazy()):
        assert guard.check_frame(other, pipeline="t", now=NOW).decisions.equals(expected)


def test_pandas_frames_are_decided_alike(example_policy: Policy) -> None:
    # pandas comes with the dev extra (PySpark needs it); importorskip keeps this test for an install without it.
    pytest.importorskip("pandas", reason="pandas is not installed (pip install pandas to run this test)")
    records = mixed_batch(random.Random(5), 60)
    for record in records:  # pandas holds whole numbers with gaps as floats: no int field here
        record["fields"].pop("priority", None)
    frame = pl.DataFrame(records, infer_schema_length=None)
    guard = Guard(example_policy, environ=ENV)
    expected = guard.check_frame(frame, pipeline="t", now=NOW).decisions
    assert guard.check_frame(frame.to_pandas(), pipeline="t", now=NOW).decisions.equals(expected)


def test_timestamps_as_aware_datetimes_decide_as_their_iso_text(example_policy: Policy) -> None:
    records = mixed_batch(random.Random(9), 80)
    frame = pl.DataFrame(records, infer_schema_length=None).filter(pl.col("source") != "stripe")
    as_text = frame.with_columns(
        pl.col(c).str.to_datetime(time_zone="UTC", strict=False) for c in ("observed_at", "updated_at")
    ).filter(pl.col("observed_at").is_not_null() | pl.col("updated_at").is_not_null())
    guard = Guard(example_policy, environ=ENV)
    as_datetimes = guard.check_frame(as_text, pipeline="t", now=NOW).decisions
    back = as_text.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00") for c in ("observed_at", "updated_at")
    )
    assert (
        guard.check_frame(back, pipeline="t", now=NOW)
        .decisions.select("action", "codes")
        .equals(as_datetimes.select("action", "codes"))
    )


def test_something_other_than_a_table_is_refused(example_policy: Policy) -> None:
    with pytest.raises(InputError, match="polars DataFrame or LazyFrame"):
        Guard(example_policy, environ=ENV).check_frame([{"id": "a"}], pipeline="t", now=NOW)


def test_audit_names_the_file_and_line_it_cannot_read(tmp_path: Path) -> None:
    source = tmp_path / "records.jsonl"
    source.write_text('{"id": "a", "object": "customer"}\n{"id": "b", oops}\n')
    ran = CliRunner().invoke(app, ["audit", str(source), "--policy", str(EXAMPLE_POLICY)], env=ENV)
    assert ran.exit_code == 2
    assert f"{source}:2: not JSON" in " ".join(ran.output.split())


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.text(max_size=6),
            st.floats(allow_nan=True, allow_infinity=True) | st.floats(min_value=-1e17, max_value=1e17),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.booleans(),
            st.none() | st.text(max_size=4),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_the_vectorised_canonical_form_is_canonical_bytes(
    values: list[tuple[str, float, int, bool, str | None]],
) -> None:
    from guard.columnar.canonical import canonical_texts
    from guard.columnar.frames import Rows
    from guard.signing import canonical_bytes

    frame = pl.DataFrame(
        {
            "id": [f"r{n}" for n in range(len(values))],
            "key": [v[0] for v in values],
            "fields": [{"amount": v[1], "count": v[2], "paid": v[3], "note": v[4]} for v in values],
            "signature": ["x"] * len(values),
        },
        schema={
            "id": pl.String,
            "key": pl.String,
            "fields": pl.Struct({"amount": pl.Float64, "count": pl.Int64, "paid": pl.Boolean, "note": pl.String}),
            "signature": pl.String,
        },
    )
    rows = Rows(frame)
    for position, text in enumerate(canonical_texts(frame).to_list()):
        if text is not None:
            assert text.encode() == canonical_bytes(rows[position])


def test_most_signed_rows_take_the_vectorised_canonical_form() -> None:
    from guard.columnar.canonical import canonical_texts

    records = [r for r in mixed_batch(random.Random(2), 400) if r["source"] == "stripe"]
    texts = canonical_texts(pl.DataFrame(records, infer_schema_length=None))
    assert texts.null_count() == 0


def test_audit_reads_json_lines_and_writes_them_as_check_decides(example_policy: Policy, tmp_path: Path) -> None:
    records = mixed_batch(random.Random(8), 120)
    source, out = tmp_path / "records.jsonl", tmp_path / "decisions.jsonl"
    source.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    args = ["audit", str(source), "--policy", str(EXAMPLE_POLICY), "--now", ts(NOW), "--out", str(out)]
    ran = CliRunner().invoke(app, args, env=ENV)
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(d["action"], frozenset(d["codes"])) for d in written] == decided(
        Guard(example_policy, environ=ENV), records
    )
    assert ran.exit_code == (1 if any(d["action"] == "block" for d in written) else 0)
    assert "Verdict:" in ran.output
    assert set(written[0]) == {"id", "object", "key", "source", "action", "codes", "messages", "age_s"}


@pytest.mark.parametrize(
    "members",
    [{"key": "K" * 501}, {"key": "C-\x001"}, {"id": "d" * 501}, {"key": "Zoë-東京"}],
    ids=["key of 501 characters", "NUL in key", "id of 501 characters", "letters beyond ASCII"],
)
def test_text_the_store_cannot_keep_is_decided_alike_by_both_engines(
    example_policy: Policy, members: dict[str, Any]
) -> None:
    base = mixed_batch(random.Random(3))[:5]
    records = [*base, {**base[0], "id": "odd", **members}]
    by_check, by_frame = (Guard(example_policy, environ=ENV) for _ in range(2))
    assert framed(by_frame, records) == decided(by_check, records)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=batches)
def test_check_frame_words_reasons_as_check_does(
    drawn: tuple[list[dict[str, Any]], random.Random], example_policy: Policy
) -> None:
    """Every message alike, CONFLICT's aside: it lists the disagreeing fields in the table's column order."""
    records, rng = drawn
    changes = watermarks_for(records, rng)
    by_check, by_frame = (Guard(example_policy, environ=ENV) for _ in range(2))
    for guard in (by_check, by_frame):
        guard.note_changes(changes)
    assert _but_conflicts(worded_frame(by_frame, records)) == _but_conflicts(worded(by_check, records))


def _but_conflicts(found: list[tuple[str, list[str], list[str]]]) -> list[tuple[str, list[str], list[str]]]:
    conflict = ReasonCode.CONFLICT.value
    return [
        (action, codes, [m for c, m in zip(codes, messages, strict=True) if c != conflict])
        for action, codes, messages in found
    ]


@pytest.mark.parametrize("rid", ["r$1", "r\\1", "r$0{}", "Zoë"])
def test_rows_of_one_shape_are_worded_each_by_its_own_id_and_key(example_policy: Policy, rid: str) -> None:
    """Leads, unknown sources and unreadable timestamps, many alike but for their id and key."""
    stamp = ts(NOW)
    shapes: list[dict[str, Any]] = [
        {"object": "lead", "source": "hubspot", "observed_at": stamp},
        {"object": "customer", "source": "sap", "observed_at": "yesterday"},
        {"object": "customer", "source": "crm-x", "observed_at": stamp, "fields": {"name": "Ana"}},
    ]
    records = [{**shape, "id": f"{rid}-{n}", "key": f"K{rid}-{n}"} for n in range(8) for shape in shapes]
    by_check, by_frame = (Guard(example_policy, environ=ENV) for _ in range(2))
    assert worded_frame(by_frame, records) == worded(by_check, records)
    first = screen_frame(pl.DataFrame(records), compile_policy(example_policy, ENV), NOW)
    assert len(first.shapes) == len(shapes)
