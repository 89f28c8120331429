"""Bulk audits on Apache Spark, with the same decisions as `check` and `check_frame` (docs/spark.md).

    from guard import Guard, load_policy
    from guard.spark import record_check

    guard = Guard(load_policy("policy.yaml"), store="postgresql+psycopg://...")
    check = guard.check_dataframe(spark.read.parquet("s3://lake/corpus"), pipeline="corpus-audit")
    check.decisions.write.parquet("s3://lake/corpus-decisions")      # lazy until here
    run = record_check(check)                                         # the run and its tallies in the store

`check` plans the rules on the cluster (`guard.spark.check`), each partition's per-record checks run
in the polars engine's code (`guard.spark.screen`), and `record` counts the run (`guard.spark.record`).
Needs `freshguard[spark]` and Java 17.
"""

from guard.spark.check import SparkCheck, plan_check
from guard.spark.record import SparkRun, record_check
from guard.spark.session import spark_session

__all__ = ["SparkCheck", "SparkRun", "plan_check", "record_check", "spark_session"]
