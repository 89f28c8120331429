"""Freshguard: checks provenance, ownership, freshness, contract and conflicts before a model sees data.

from guard import Guard, load_policy
guard = Guard(load_policy("policies/support-assistant.yaml"), store="sqlite:///freshguard.db")
result = guard.check(records, pipeline="support-bot")
"""

from guard._durations import format_duration, humanize_seconds, parse_duration
from guard.decisions import Action, CheckResult, Decision, DecisionTable, PolicyRef, Reason, ReasonCode, Verdict
from guard.errors import (
    ConfigurationError,
    GuardError,
    InputError,
    PolicyError,
    PolicyProblem,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
    VersionConflictError,
)
from guard.guard import Guard
from guard.policy import Policy, load_policy, parse_policy, parse_policy_text
from guard.records import LineageHop, Record
from guard.signing import canonical_bytes, sign_record, with_signature
from guard.tallies import Tally, tally_check

TYPE_CHECKING = False
if TYPE_CHECKING:
    from guard.client import ServiceClient, ServiceError
    from guard.lineage.store import LineageStore

__all__ = [
    "Action",
    "CheckResult",
    "ConfigurationError",
    "Decision",
    "DecisionTable",
    "Guard",
    "GuardError",
    "InputError",
    "LineageHop",
    "LineageStore",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "PolicyRef",
    "Reason",
    "ReasonCode",
    "Record",
    "ServiceClient",
    "ServiceError",
    "StoreError",
    "StoreTimeoutError",
    "StoreUnavailableError",
    "Tally",
    "Verdict",
    "VersionConflictError",
    "canonical_bytes",
    "format_duration",
    "humanize_seconds",
    "load_policy",
    "parse_duration",
    "parse_policy",
    "parse_policy_text",
    "sign_record",
    "tally_check",
    "with_signature",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The store pulls in SQLAlchemy; import it only for those who use it.
    if name == "LineageStore":
        from guard.lineage.store import LineageStore

        return LineageStore
    if name in ("ServiceClient", "ServiceError"):
        # The service client pulls in httpx2; import it only for those who use it.
        from guard import client

        return getattr(client, name)
    raise AttributeError(f"module 'guard' has no attribute {name!r}")
