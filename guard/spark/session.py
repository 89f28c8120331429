"""A Spark session for Freshguard's own commands: the master asked for, in UTC, Arrow batches of a useful size."""

from __future__ import annotations

import os
import sys
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
    if _runs_locally(master):
        # Local Python workers run this interpreter (a venv's, whether or not it is activated), not
        # whatever `python3` is first on PATH: that one may lack Freshguard. PYSPARK_PYTHON still wins.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for name, value in {**SESSION_CONF, **(conf or {})}.items():
        builder = builder.config(name, value)
    return builder.getOrCreate()


def _runs_locally(master: str | None) -> bool:
    """True for a local master, or none asked for outside spark-submit and any Spark installation's settings
    (pip's PySpark then runs `local[*]`)."""
    if master is not None:
        return master.startswith("local")
    return not any(name in os.environ for name in ("PYSPARK_GATEWAY_PORT", "SPARK_HOME", "SPARK_CONF_DIR"))
