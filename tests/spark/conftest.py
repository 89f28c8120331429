"""One Spark session for every Spark test: local[2], few shuffle partitions, no UI (its start costs seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Small settings for small data on two cores.
TEST_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "1g",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The shared local[2] session (Java 17 comes from scripts/system-packages)."""
    from guard.spark import spark_session

    session = spark_session("local[2]", app_name="freshguard-tests", conf=TEST_CONF)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
