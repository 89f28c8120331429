"""The Spark engine decides as the polars engine does (action, codes, messages), and keeps its run as a check's.

Every test shares one local[2] session (tests/spark/conftest.py). Inputs are Parquet files both engines
read, so they see the same table.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from guard import Guard, InputError, Policy, ReasonCode
from guard.cli.main import app
from guard.spark import record_check
from tests.columnar_batches import customer_copies, mixed_batch, mixed_corpus, watermarks_for
from tests.conftest import EXAMPLE_POLICY, NOW, STRIPE_KEY, ts
from tests.integrations.test_openlineage import Receiver, validate
from tests.lineage.lineage_helpers import forget_watermarks

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ENV = {"STRIPE_SIGNING_KEY": STRIPE_KEY}


def spark_decisions(guard: Guard, spark: SparkSession, source: Path, *, partitions: int = 1) -> pl.DataFrame:
    """The Spark engine's decisions of a Parquet file read in about `partitions` partitions, in input order."""
    size = sum(path.stat().st_size for path in source.rglob("*")) if source.is_dir() else source.stat().st_size
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(max(size // partitions, 1 << 12)))
    try:
        frame = spark.read.parquet(str(source))
        assert frame.rdd.getNumPartitions() >= min(partitions, 2)
        check = guard.check_dataframe(frame, pipeline="diff", now=NOW, row_index="row")
        found = pl.from_arrow(check.decisions.toArrow())
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert isinstance(found, pl.DataFrame)
    return found.sort("row").drop("row")


def guards(policy: Policy, changes: list[tuple[str, str, Any]]) -> tuple[Guard, Guard]:
    """Two guards without a store that know the same owner changes."""
    pair = (Guard(policy, environ=ENV), Guard(policy, environ=ENV))
    for guard in pair:
        guard.note_changes(changes)
    return pair


def test_spark_and_polars_decide_a_corpus_alike(spark: SparkSession, example_policy: Policy, tmp_path: Path) -> None:
    """100,000 records: mixed batches that reach every reason code, among agreeing copies of many customers."""
    mixed, changes = mixed_corpus(random.Random(16), 12_000)
    records = customer_copies(88_000)
    for at, record in enumerate(mixed):
        records.insert(at * 8, record)  # spread over the partitions
    source = tmp_path / "corpus.parquet"
    pl.DataFrame(records, infer_schema_length=None).write_parquet(source, row_group_size=5_000)
    by_polars, by_spark = guards(example_policy, changes)
    expected = by_polars.check_frame(pl.read_parquet(source), pipeline="diff", now=NOW).decisions
    found = spark_decisions(by_spark, spark, source, partitions=6)
    codes = set(expected.get_column("codes").explode().drop_nulls())
    assert codes == {code.value for code in ReasonCode}
    assert_frame_equal(found, expected)


def test_many_small_batches_are_decided_alike(spark: SparkSession, example_policy: Policy, tmp_path: Path) -> None:
    """Mixed batches with their few entities' copies, duplicate ids and unnamed records, each in two partitions."""
    for seed in range(3):
        rng = random.Random(seed)
        records = mixed_batch(rng, 400)
        source = tmp_path / f"batch{seed}.parquet"
        pl.DataFrame(records, infer_schema_length=None).write_parquet(source, row_group_size=100)
        by_polars, by_spark = guards(example_policy, watermarks_for(records, rng))
        expected = by_polars.check_frame(pl.read_parquet(source), pipeline="diff", now=NOW).decisions
        assert_frame_equal(spark_decisions(by_spark, spark, source, partitions=3), expected)


def test_a_spark_run_is_kept_as_a_frame_run_is(
    spark: SparkSession, example_policy: Policy, store_url: str, tmp_path: Path
) -> None:
    """The run, its tallies and the watermarks it teaches are those the polars engine keeps for the same table."""
    rng = random.Random(8)
    records = mixed_batch(rng, 600)
    changes = watermarks_for(records, rng)
    source = tmp_path / "records.parquet"
    pl.DataFrame(records, infer_schema_length=None).write_parquet(source)
    kept = []
    for engine in ("polars", "spark"):
        forget_watermarks(store_url)
        with Guard(example_policy, store=store_url, environ=ENV) as guard:
            guard.note_changes(changes)
            if engine == "polars":
                run_id = guard.check_frame(pl.read_parquet(source), pipeline="kept", now=NOW).run_id
            else:
                check = guard.check_dataframe(spark.read.parquet(str(source)), pipeline="kept", now=NOW)
                run = record_check(check)
                run_id = run.run_id
                assert run.records == len(records)
        kept.append(_kept(store_url, run_id))
    assert kept[1] == kept[0]


def _kept(url: str, run_id: str) -> tuple[Any, ...]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            run = conn.execute(
                sa.text("SELECT records, allowed, warned, blocked, verdict, pipeline FROM runs WHERE run_id = :r"),
                {"r": run_id},
            ).one()
            tallies = conn.execute(
                sa.text(
                    "SELECT source, object, records, allowed, warned, blocked, reasons, age_buckets, age_max_s, "
                    "age_sum_s FROM run_tallies WHERE run_id = :r"
                ),
                {"r": run_id},
            ).all()
            marks = conn.execute(sa.text('SELECT object, "key", updated_at FROM watermarks')).all()
    finally:
        engine.dispose()
    rounded = sorted((*row[:9], round(row[9], 3)) for row in (_plain(row) for row in tallies))
    return tuple(run), rounded, sorted(marks)


def _plain(row: Any) -> tuple[Any, ...]:
    """A tallies row with its JSON columns (reasons, age_buckets) as canonical text, in whatever order kept."""
    import json

    def canonical(value: Any) -> str:
        return json.dumps(json.loads(value) if isinstance(value, str) else value, sort_keys=True)

    return (*row[:6], canonical(row[6]), canonical(row[7]), *row[8:])


def test_a_dataframe_without_envelope_columns_is_refused(spark: SparkSession, example_policy: Policy) -> None:
    frame = spark.createDataFrame([(1, "x")], "n long, text string")
    with pytest.raises(InputError, match="envelope's members"):
        Guard(example_policy, environ=ENV).check_dataframe(frame, pipeline="t", now=NOW)


def test_audit_with_the_spark_engine_writes_what_the_polars_engine_writes(spark: SparkSession, tmp_path: Path) -> None:
    """The same decisions file and summary; the Spark job is one OpenLineage event when OpenLineage is configured."""
    records = mixed_batch(random.Random(11), 300)
    source = tmp_path / "records.parquet"
    pl.DataFrame(records, infer_schema_length=None).write_parquet(source)
    outputs = {}
    receiver = Receiver()
    lineage = {"FRESHGUARD_OPENLINEAGE": "true", "OPENLINEAGE_URL": receiver.url}
    try:
        for engine in ("polars", "spark"):
            out = tmp_path / f"{engine}.parquet"
            args = ["audit", str(source), "--policy", str(EXAMPLE_POLICY), "--now", ts(NOW), "--out", str(out)]
            env = {**ENV, **(lineage if engine == "spark" else {})}
            ran = CliRunner().invoke(app, [*args, "--engine", engine], env=env)
            assert ran.exit_code == 1, ran.output
            assert "Verdict: PARTIAL" in ran.output
            outputs[engine] = ran.output
    finally:
        receiver.close()
    assert len(receiver.bodies) == 1
    event = receiver.bodies[0]
    validate(event)
    assert event["job"]["facets"]["jobType"]["integration"] == "SPARK"
    assert event["run"]["facets"]["freshguard_check"]["recordCount"] == len(records)
    assert event["outputs"][0]["name"] == str((tmp_path / "spark.parquet").resolve())
    polars_out = pl.read_parquet(tmp_path / "polars.parquet")
    spark_out = pl.read_parquet(tmp_path / "spark.parquet" / "*.parquet")
    key = ["id", "object", "key", "source", "action", "codes", "messages", "age_s"]
    assert_frame_equal(spark_out.sort(key), polars_out.sort(key))
    assert _summary(outputs["spark"]) == _summary(outputs["polars"])


def _summary(output: str) -> list[str]:
    """What audit printed, but for the run id, the time it took and the file it wrote."""
    return [line for line in output.splitlines() if not any(part in line for part in ("Run ", "checked in", "wrote "))]


def test_spark_submit_runs_the_audit_on_local_2(tmp_path: Path) -> None:
    """The job as a cluster runs it: `spark-submit --master local[2]` with the audit module (docs/spark.md)."""
    submit = shutil.which("spark-submit", path=str(Path(sys.executable).parent))
    assert submit is not None, "pyspark installs spark-submit beside the interpreter"
    records = mixed_batch(random.Random(12), 200)
    source, out = tmp_path / "records.parquet", tmp_path / "decisions.parquet"
    pl.DataFrame(records, infer_schema_length=None).write_parquet(source)
    command = [submit, "--master", "local[2]", "--conf", "spark.ui.enabled=false"]
    command += ["--conf", "spark.sql.shuffle.partitions=4", str(_job()), str(source)]
    command += ["--policy", str(EXAMPLE_POLICY), "--now", ts(NOW), "--out", str(out)]
    env = {**os.environ, **ENV, "PYSPARK_PYTHON": sys.executable}
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert ran.returncode == 1, ran.stderr[-3000:]
    assert "Verdict: PARTIAL" in ran.stdout
    decided = pl.read_parquet(out / "*.parquet")
    expected = Guard(_policy(), environ=ENV).check_frame(pl.read_parquet(source), pipeline="t", now=NOW).decisions
    assert sorted(decided.get_column("id").to_list()) == sorted(expected.get_column("id").to_list())
    assert (
        decided.get_column("action")
        .value_counts()
        .sort("action")
        .equals(expected.get_column("action").value_counts().sort("action"))
    )


def test_the_audit_runs_from_a_venv_that_is_not_activated(tmp_path: Path) -> None:
    """`.venv/bin/freshguard audit --engine spark` with the venv off PATH: Spark's Python workers must run the
    venv's interpreter, not the first `python3` on PATH (which lacks Freshguard's dependencies)."""
    source, out = tmp_path / "records.parquet", tmp_path / "decisions"
    pl.DataFrame(mixed_batch(random.Random(13), 50), infer_schema_length=None).write_parquet(source)
    freshguard = Path(sys.executable).parent / "freshguard"
    hidden = ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "VIRTUAL_ENV", "SPARK_HOME", "SPARK_CONF_DIR")
    env = {name: value for name, value in os.environ.items() if name not in hidden}
    env |= {**ENV, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    command = [str(freshguard), "audit", str(source), "--policy", str(EXAMPLE_POLICY), "--now", ts(NOW)]
    command += ["--engine", "spark", "--out", str(out)]
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert ran.returncode in (0, 1), ran.stderr[-3000:]
    assert "Verdict:" in ran.stdout
    assert pl.read_parquet(out / "*.parquet").height == pl.read_parquet(source).height


def _job() -> Path:
    from guard.spark import submit

    return Path(submit.__file__)


def _policy() -> Policy:
    from guard import load_policy

    return load_policy(EXAMPLE_POLICY)
