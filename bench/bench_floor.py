"""The floor under the big check. Prints figures; run: python bench/bench_floor.py.

On the 100,000-record mixed workload of bench_check.py, this times the parts that every
check written in Python pays for whatever its design, each on its own and each as cheaply
as we know how to write it, and adds them up:

- reading the envelope members of every record, in one loop, into columns;
- parsing each timestamp (observed_at, updated_at, lineage hops), once per distinct text;
- building, for each object with a contract, the polars DataFrame of its records' fields;
- pandera's `validate(lazy=True)` of the object's contract (`Contract.schema`) on that frame;
- verifying the HMAC of the signed records (canonical JSON, then HMAC-SHA256);
- grouping the records by entity (object, key), as conflict detection must.

The sum is a lower bound on the time of a check, and 100,000 records over it is a ceiling
on the throughput of any such design: deciding, writing reasons and building results all
come on top. Each figure is the best of `--repeats` runs, with the cyclic garbage collector
paused (the guard itself leaves the collector alone), so that the floor is the work itself.
"""

from __future__ import annotations

import argparse
import gc
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandera.errors as pa_errors
import polars as pl
from workload import SIGNING_KEY, make_records

from guard import load_policy
from guard._ids import new_run_id
from guard.checks.compiled import compile_policy
from guard.checks.contract import Contract
from guard.signing import canonical_bytes

POLICY = Path(__file__).parent.parent / "policies" / "support-assistant.yaml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
_POLARS_TYPES: dict[str, pl.DataType] = {
    "str": pl.Utf8(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "datetime": pl.Datetime("us", "UTC"),
}


class Columns:
    """The envelope members of every record, one list per member."""

    def __init__(self, size: int) -> None:
        self.ids: list[Any] = [None] * size
        self.objects: list[Any] = [None] * size
        self.keys: list[Any] = [None] * size
        self.sources: list[Any] = [None] * size
        self.observed: list[Any] = [None] * size
        self.updated: list[Any] = [None] * size
        self.fields: list[Any] = [None] * size
        self.content: list[Any] = [None] * size
        self.lineage: list[Any] = [None] * size
        self.signature: list[Any] = [None] * size


def best(repeats: int, work: Callable[[], object]) -> float:
    """The shortest of `repeats` runs of `work`, in seconds, with the collector paused."""
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        finally:
            gc.enable()
    return min(times)


def read_members(records: list[dict[str, Any]]) -> Columns:
    """One loop over the records, reading the ten envelope members of each into columns."""
    cols = Columns(len(records))
    ids, objects, keys, sources = cols.ids, cols.objects, cols.keys, cols.sources
    observed, updated, fields, content = cols.observed, cols.updated, cols.fields, cols.content
    lineage, signature = cols.lineage, cols.signature
    for index, record in enumerate(records):
        get = record.get
        ids[index], objects[index], keys[index], sources[index] = get("id"), get("object"), get("key"), get("source")
        observed[index], updated[index] = get("observed_at"), get("updated_at")
        fields[index], content[index] = get("fields"), get("content")
        lineage[index], signature[index] = get("lineage"), get("signature")
    return cols


def parse_timestamps(cols: Columns) -> list[float | None]:
    """Epoch seconds of each record's age timestamp; every text is parsed once, then looked up."""
    parsed: dict[str, float | None] = {}

    def parse(text: str) -> float | None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        found = parsed[text] = moment.timestamp() if moment is not None and moment.tzinfo is not None else None
        return found

    ages: list[float | None] = [None] * len(cols.observed)
    missing = parsed  # a sentinel no timestamp can be
    for index, (observed, updated, hops) in enumerate(zip(cols.observed, cols.updated, cols.lineage, strict=True)):
        o = u = None
        if type(observed) is str:
            o = parsed.get(observed, missing)
            if o is missing:
                o = parse(observed)
        if type(updated) is str:
            u = parsed.get(updated, missing)
            if u is missing:
                u = parse(updated)
        if hops is not None:
            for hop in hops:
                at = hop.get("at")
                if type(at) is str and parsed.get(at, missing) is missing:
                    parse(at)
        ages[index] = o if o is not None else u  # type: ignore[assignment]
    return ages


def rows_by_object(cols: Columns, contracts: dict[str, Contract]) -> dict[str, list[Any]]:
    """Each contracted object's records' `fields` (prepared outside the timings)."""
    rows: dict[str, list[Any]] = {name: [] for name in contracts}
    for obj, fields in zip(cols.objects, cols.fields, strict=True):
        if obj in rows:
            rows[obj].append(fields)
    return rows


def build_frame(contract: Contract, rows: list[Any]) -> pl.DataFrame:
    """The frame of one object's fields: a typed column per field, one comprehension per field."""
    columns = []
    for rule in contract.rules:
        name = rule.name
        values = [row.get(name) if row is not None else None for row in rows]
        columns.append(pl.Series(name, values, dtype=_POLARS_TYPES[rule.type], strict=True))
    return pl.DataFrame(columns)


def validate(contract: Contract, frame: pl.DataFrame) -> int:
    """pandera's lazy validation of the frame; the number of failure cases it reports."""
    try:
        contract.schema.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as exc:
        return int(exc.failure_cases.height)
    return 0


def verify(signed: list[tuple[dict[str, Any], str]], key: bytes, canonical: Callable[[dict[str, Any]], bytes]) -> int:
    """HMAC verification of every signed record, over the canonical bytes `canonical` writes; how many verify."""
    good = 0
    for record, signature in signed:
        expected = hmac.digest(key, canonical(record), "sha256").hex()
        good += hmac.compare_digest(expected, signature.lower())
    return good


def group(cols: Columns) -> list[list[int]]:
    """The records of every entity seen more than once, by (object, key).

    polars does it in half the time of the cheapest dict-based pass we know (a first-index
    dict, lists only for repeats), building its two columns from the lists included.
    """
    frame = pl.DataFrame({"object": cols.objects, "key": cols.keys}, schema={"object": pl.Utf8, "key": pl.Utf8})
    repeated = frame.with_row_index().filter(pl.struct("object", "key").is_duplicated())
    return repeated.group_by("object", "key").agg(pl.col("index")).get_column("index").to_list()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    records = make_records(args.records, NOW)
    compiled = compile_policy(load_policy(POLICY), {"STRIPE_SIGNING_KEY": SIGNING_KEY})
    contracts = {name: rules.contract for name, rules in compiled.objects.items() if rules.contract}
    key = compiled.signing_keys["stripe"]
    repeats = args.repeats

    cols = read_members(records)
    rows = rows_by_object(cols, contracts)
    rows = {name: found for name, found in rows.items() if found}
    frames = {name: build_frame(contracts[name], found) for name, found in rows.items()}
    failures = {name: validate(contracts[name], frame) for name, frame in frames.items()}
    signed = [(r, r["signature"]) for r in records if r.get("source") == "stripe" and type(r.get("signature")) is str]
    if verify(signed, key, canonical_bytes) != len(signed):
        raise SystemExit("the workload's signatures do not verify: the HMAC figure would measure the wrong path")

    groups = group(cols)
    parts = [
        ("read envelope members", "10 members of every record, one loop", best(repeats, lambda: read_members(records))),
        (
            "parse timestamps",
            "observed_at, updated_at, lineage hops; once per text",
            best(repeats, lambda: parse_timestamps(cols)),
        ),
        (
            "build contract frames",
            ", ".join(f"{n} {len(r):,} rows" for n, r in rows.items()),
            best(repeats, lambda: [build_frame(contracts[n], r) for n, r in rows.items()]),
        ),
        (
            "pandera validate(lazy=True)",
            ", ".join(f"{n} {failures[n]:,} failure cases" for n in frames),
            best(repeats, lambda: [validate(contracts[n], f) for n, f in frames.items()]),
        ),
        (
            "verify HMAC signatures",
            f"{len(signed):,} signed records",
            best(repeats, lambda: verify(signed, key, canonical_bytes)),
        ),
        ("group by (object, key)", f"{len(groups):,} entities seen twice or more", best(repeats, lambda: group(cols))),
    ]
    count = len(records)
    report(f"Floor of a {count:,}-record mixed check in Python (best of {repeats}, collector paused):", parts, count)
    store_floor(records, compiled, repeats)


def store_floor(records: list[dict[str, Any]], compiled: Any, repeats: int) -> None:
    """What SQLite alone takes to keep a check's rows: the run, then its run_records rows, committed.

    The rows are the ones the store writes for this check (built outside the timing), inserted
    through the driver's executemany in one transaction, as `LineageStore.record_check` does;
    once into the store's real schema, and once with its (object, key) lineage index dropped.
    """
    import sqlite3
    import tempfile

    from guard import Guard, LineageStore
    from guard.lineage._base import _sqlite_time, as_stored_time
    from guard.lineage.store import _RECORD_COLUMNS, content_hash, record_rows

    guard = Guard(compiled.policy, environ={"STRIPE_SIGNING_KEY": SIGNING_KEY})
    table = guard.check(records, pipeline="bench", now=NOW).decisions
    columns = (
        table.ids, table.objects, table.keys, table.sources, table.observed, table.updated,
        [content_hash(record) for record in records], table.ages, table.actions, table.reasons,
    )  # fmt: skip
    marks = ", ".join("?" for _ in _RECORD_COLUMNS)
    insert = f"INSERT INTO run_records ({', '.join(_RECORD_COLUMNS)}) VALUES ({marks})"  # noqa: S608
    print(f"SQLite keeping one check's {len(records):,} rows (best of {repeats}; each run adds to the same file):")
    for indexed in (True, False):
        with tempfile.TemporaryDirectory() as folder:
            path = f"{folder}/floor.db"
            LineageStore(f"sqlite:///{path}").engine.dispose()  # the store's schema, by its migrations
            conn = sqlite3.connect(path, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                conn.execute(f"PRAGMA {pragma}")
            if not indexed:
                conn.execute("DROP INDEX ix_run_records_entity")
            times = []
            for _ in range(repeats):
                run_id = new_run_id()
                rows = record_rows(run_id, columns, as_stored_time(True))
                started = time.perf_counter()
                conn.execute("BEGIN")
                conn.execute(
                    "INSERT INTO runs (run_id, pipeline, checked_at, policy_name, policy_version, policy_hash, "
                    "verdict, records, allowed, warned, blocked, duration_ms) "
                    "VALUES (?, 'bench', ?, 'p', 1, 'h', 'block', ?, 0, 0, 0, 0)",
                    (run_id, _sqlite_time(NOW), len(rows)),
                )
                conn.executemany(insert, rows)
                conn.execute("COMMIT")
                times.append(time.perf_counter() - started)
            conn.close()
        seconds = min(times)
        what = "the store's schema, (object, key) index included" if indexed else "without the (object, key) index"
        print(f"  {what:<50} {seconds * 1e3:6.1f} ms  {len(rows) / seconds:>11,.0f} rows/s")


def report(title: str, parts: list[tuple[str, str, float]], count: int) -> None:
    print(title)
    for name, what, seconds in parts:
        print(f"  {name:<28} {seconds * 1e3:6.1f} ms  {count / seconds:>11,.0f} records/s alone  ({what})")
    total = sum(seconds for _, _, seconds in parts)
    print(f"  {'total':<28} {total * 1e3:6.1f} ms  {count / total:>11,.0f} records/s")
    print(f"Implied ceiling: {count / total:,.0f} records/s, before deciding anything or writing a single reason")


if __name__ == "__main__":
    main()
