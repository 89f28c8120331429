"""Every error Freshguard raises on purpose.

    GuardError
    ├── PolicyError        a policy file or document that does not load
    │   └── VersionConflictError  a policy published with a version not above the one in force
    ├── ConfigurationError the guard cannot start as configured (a missing signing key, ...)
    ├── InputError       input a check cannot take at all (not a list, a line that is not JSON)
    └── StoreError         the lineage store is unreachable or refused a write

A single malformed record is never an exception: it is decided `INVALID_RECORD`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class GuardError(Exception):
    """Base of every error Freshguard raises on purpose."""


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong in a policy: where (`objects.customer.max_age`) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path or "(top level)"
        if self.line is not None:
            where = f"{where} (line {self.line})"
        return f"{where}: {self.message}"


class PolicyError(GuardError):
    """A policy that cannot be loaded; lists every problem found, not just the first."""

    def __init__(self, origin: str, problems: Sequence[PolicyProblem]) -> None:
        self.origin = origin
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"policy {origin} is refused" + (f" ({count} problems):" if count > 1 else ":")
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}\n{body}")


class VersionConflictError(PolicyError):
    """A policy published with a version that is not higher than the last one published."""

    def __init__(self, origin: str, version: int, latest: int) -> None:
        self.version = version
        self.latest = latest
        super().__init__(
            origin,
            [
                PolicyProblem(
                    "version",
                    f"is {version}, but version {latest} is already published; a new policy needs a higher "
                    f"version: publish it as version {latest + 1} (or higher)",
                )
            ],
        )


class ConfigurationError(GuardError):
    """The guard cannot run as configured; the message says what to set."""


class InputError(GuardError, ValueError):
    """Input a check cannot take at all: records that are not a list, a file line that is not JSON."""


class StoreError(GuardError):
    """The lineage store could not be opened, migrated, read or written."""


class StoreUnavailableError(StoreError):
    """The lineage store could not be reached or answered with an error that may pass: try again shortly.

    A check that meets it is not answered as decided, because its lineage could not be kept.
    """


class StoreTimeoutError(StoreUnavailableError):
    """The lineage store did not answer within its deadline (`timeout_s`); the operation was cut off."""
