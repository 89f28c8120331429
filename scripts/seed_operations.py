"""Fill a lineage store with a day of realistic history, for the dashboard demo and its tests.

    python scripts/seed_operations.py sqlite:///freshguard.db [--hours 24]

What the day holds: guard/cli/demo_day.py (`freshguard demo` seeds the same day and serves it).
"""

from __future__ import annotations

import argparse
import sys

from guard.cli.demo_day import seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database")
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    seeded = seed(args.database, hours=args.hours)
    print(f"seeded {args.hours} h of history into {args.database}", file=sys.stderr)
    for number, source, obj in seeded.open_incidents:
        print(f"open incident #{number}: {source} → {obj}", file=sys.stderr)


if __name__ == "__main__":
    main()
