"""A policy compiled for checking: the lookups every engine reads, built once per policy."""

from __future__ import annotations

from collections.abc import Mapping

from guard.checks.rules import ObjectRules
from guard.errors import ConfigurationError
from guard.policy.model import Policy


class CompiledPolicy:
    """A policy plus its compiled rules, its hash and the signing keys of its sources."""

    def __init__(self, policy: Policy, signing_keys: Mapping[str, bytes]) -> None:
        self.policy = policy
        self.hash = policy.content_hash()
        self.objects = {name: ObjectRules.build(name, spec, policy) for name, spec in policy.objects.items()}
        self.sources = frozenset(policy.sources)
        self.signing_keys = dict(signing_keys)
        self.clock_skew_s = policy.clock_skew.total_seconds()
        self.naive_is_utc = policy.naive_timestamps == "utc"
        #: What the first pass reads per object, made once here rather than on every check:
        #: (rules, the age past which a copy gets STALE or AGING, allowed sources, owner, require_lineage).
        self.screen_limits: dict[str, tuple[ObjectRules, float, frozenset[str], str, bool]] = {
            name: (
                rules,
                float(rules.warn_age_s if rules.warn_age_s is not None else rules.max_age_s),
                rules.allowed_sources,
                rules.owner,
                bool(rules.require_lineage),
            )
            for name, rules in self.objects.items()
        }
        self.owners = {name: rules.owner for name, rules in self.objects.items()}


def compile_policy(policy: Policy, environ: Mapping[str, str]) -> CompiledPolicy:
    """Compile a policy for checking; every signing key it names must be set in `environ`."""
    keys: dict[str, bytes] = {}
    missing: list[str] = []
    for name, source in policy.sources.items():
        if source.signing_key_env is None:
            continue
        value = environ.get(source.signing_key_env)
        if not value:
            missing.append(f"{source.signing_key_env} (for {name})")
        else:
            keys[name] = value.encode("utf-8")
    if missing:
        raise ConfigurationError(
            f"policy {policy.name} requires signed records, but these environment variables are not set: "
            f"{', '.join(missing)}; set each to the source's HMAC signing key"
        )
    return CompiledPolicy(policy, keys)
