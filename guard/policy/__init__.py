"""What a policy says: models, loading and validation. No pandas, no database here."""

from guard.policy.load import load_policy, parse_policy, parse_policy_text, policy_from_document
from guard.policy.model import FieldSpec, NotifySpec, ObjectSpec, Policy, SLASpec, SourceSpec

__all__ = [
    "FieldSpec",
    "NotifySpec",
    "ObjectSpec",
    "Policy",
    "SLASpec",
    "SourceSpec",
    "load_policy",
    "parse_policy",
    "parse_policy_text",
    "policy_from_document",
]
