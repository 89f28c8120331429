"""`freshguard audit --engine spark` as a Spark application, for `spark-submit` (docs/spark.md):

    spark-submit --master spark://host:7077 "$(python -c 'import guard.spark.submit as s; print(s.__file__)')" \
        s3a://lake/corpus --policy policy.yaml --database postgresql+psycopg://... --out s3a://lake/decisions

Takes the arguments of `freshguard audit` and runs on the master spark-submit was given.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run `freshguard audit ARGS... --engine spark`."""
    from guard.cli.main import main as freshguard

    sys.argv = ["freshguard", "audit", *(sys.argv[1:] if argv is None else argv), "--engine", "spark"]
    freshguard()


if __name__ == "__main__":
    main()
