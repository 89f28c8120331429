"""Signatures: records from a source with a signing key must carry a signature that verifies."""

from __future__ import annotations

from guard.checks.envelope import Envelope
from guard.decisions import Reason, ReasonCode
from guard.signing import signature_matches


def check_signature(env: Envelope, key: bytes, out: list[Reason]) -> None:
    """Append UNSIGNED or BAD_SIGNATURE for a source that signs its records."""
    if env.signature is None:
        out.append(
            Reason(
                ReasonCode.UNSIGNED,
                f"{env.label()} is not signed; the policy requires every record from {env.source} to be signed",
                {"source": env.source},
            )
        )
    elif not signature_matches(env.raw, env.signature, key):
        out.append(
            Reason(
                ReasonCode.BAD_SIGNATURE,
                f"the signature on {env.label()} does not match its contents: it was changed after it "
                f"was signed, or signed with a key other than {env.source}'s",
                {"source": env.source},
            )
        )
