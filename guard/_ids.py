"""Run ids: UUIDs of version 7 (RFC 9562), which start with the millisecond they were made in.

A store keeps every run and record row under its run id. Random ids (version 4) land each new run
on a random page of those indexes, and a prune of the oldest runs removes entries scattered over
every page; ids that grow with time are appended at one end and pruned from the other. They are
still UUIDs (OpenLineage's `runId` must be one), and the other 74 bits are random.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_A = (1 << 12) - 1  # the 12 random bits after the version
_RAND_B = (1 << 62) - 1  # the 62 random bits after the variant


def new_run_id(at_ns: int | None = None) -> str:
    """A new run id: a version-7 UUID of the millisecond `at_ns` (Unix nanoseconds; default now)."""
    ms = (time.time_ns() if at_ns is None else at_ns) // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | _VERSION | ((rand >> 62) & _RAND_A) << 64 | _VARIANT | (rand & _RAND_B)
    return str(uuid.UUID(int=value))
