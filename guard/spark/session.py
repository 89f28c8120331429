"""A Spark session for Freshguard's own commands: the master asked for, in UTC, Arrow batches of a useful size."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: What Freshguard's sessions set (a session from `spark-submit` or a notebook keeps its own settings).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
    "spark.ui.showConsoleProgress": "false",
}


def spark_session(
    master: str | None = None, *, app_name: str = "freshguard-audit", conf: Mapping[str, str] | None = None
) -> SparkSession:
    """The active Spark session, or a new one on `master` (default: what `spark-submit` set, else `local[*]`),
    with `SESSION_CONF` and `conf`."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for name, value in {**SESSION_CONF, **(conf or {})}.items():
        builder = builder.config(name, value)
    return builder.getOrCreate()
