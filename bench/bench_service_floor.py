"""The floors under POST /v1/check over HTTP: how fast one worker answers when a check does less.

Serves the real app (one granian worker, access log on, a temporary SQLite store, as `freshguard
serve` does) with three more routes from bench/floor_app.py, and drives each with wrk, 8 connections,
the same 20 fresh records per request as bench/bench_service.py:

    GET /healthz            the server's no-op
    POST /floor/body        the body read
    POST /floor/validated   the body validated as a CheckRequest
    POST /floor/decided     the records decided without a store, answered as /v1/check answers
    POST /floor/raw-decided the same in plain ASGI, ahead of FastAPI and the middlewares
    POST /floor/stored      the same, the lineage committed, without the check route's dependencies
    POST /floor/raw-stored  the same in plain ASGI
    POST /v1/check          the check, its lineage committed

Run: python bench/bench_service_floor.py [--duration S] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench_service import POLICY, BenchError, Measured, _free_port, running, wrk

HERE = Path(__file__).parent
GRANIAN = str(Path(sys.executable).parent / "granian")
PATHS = (
    "/healthz",
    "/floor/body",
    "/floor/validated",
    "/floor/decided",
    "/floor/raw-decided",
    "/floor/stored",
    "/floor/raw-stored",
    "/v1/check",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8, help="seconds per measurement (default 8)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best of each path is reported")
    parser.add_argument(
        "--writer",
        choices=("process", "threads"),
        default="process",
        help="where the stored routes commit lineage: a writer process (the default) or threads",
    )
    parser.add_argument("--paths", nargs="+", default=PATHS, help="the paths to measure (default: all)")
    parser.add_argument("--granian", nargs="*", default=[], metavar="OPTION", help="more granian options, such as "
                        "--task-impl=rust (written with '=')")  # fmt: skip
    args = parser.parse_args()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="freshguard-floor-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHGUARD_")}
        env |= {
            "STRIPE_SIGNING_KEY": "bench-stripe-key", "FRESHGUARD_POLICY": str(POLICY),
            "FRESHGUARD_DATABASE_URL": f"sqlite:///{folder}/lineage.db",
            "FRESHGUARD_WRITER_PROCESS": str(args.writer == "process").lower(),
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), env.get("PYTHONPATH", "")]),
        }  # fmt: skip
        command = [GRANIAN, "--interface", "asgi", "--factory", "floor_app:app", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "1", "--access-log", *args.granian]  # fmt: skip
        with running(command, env, port, Path(folder) / "serve.log") as base:
            best: dict[str, Measured] = {}
            for round_ in range(args.repeat + 1):  # the first round warms up
                for path in args.paths:
                    script = () if path == "/healthz" else (f"f{round_}{path.replace('/', '')}",)
                    seconds = 2 if round_ == 0 else args.duration
                    measured = wrk(base + path, connections=8, seconds=seconds, script_args=script)
                    if measured.not_2xx or measured.socket_errors:
                        raise BenchError(f"{path}: {measured.not_2xx} answers not 2xx, {measured.socket_errors} errors")
                    if round_ and (path not in best or measured.rate > best[path].rate):
                        best[path] = measured
    health = best["/healthz"].rate if "/healthz" in best else float("nan")
    print(
        f"one worker, 8 connections, 20 fresh records per request; best of {args.repeat} rounds of {args.duration:g} s"
    )
    for path in args.paths:
        m = best[path]
        print(f"  {path:<18} {m.rate:8,.0f} req/s  p50 {m.p50_ms:6.2f} ms  p99 {m.p99_ms:6.2f} ms  "
              f"{1000 / m.rate:5.2f} ms/request  = {m.rate / health:.2f}x healthz")  # fmt: skip


if __name__ == "__main__":
    main()
