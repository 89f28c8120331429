"""The C hot loops of a check (`guard._native`), when they are built and not switched off.

Every function of `guard._native` has a Python twin that decides the same, and the guard runs
on the twins when the extension is missing (a build without a compiler) or when the
environment says `FRESHGUARD_NATIVE=0` (to compare the two, or to rule the C code out).
"""

from __future__ import annotations

import os

try:
    from guard import _native as native
except ImportError:  # built without a C compiler
    native = None  # type: ignore[assignment]

if os.environ.get("FRESHGUARD_NATIVE", "1") == "0":
    native = None  # type: ignore[assignment]

__all__ = ["native"]
