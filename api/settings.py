"""The service's settings, read from FRESHGUARD_* environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from guard._durations import parse_duration
from guard.lineage.store import Retention

#: Host names that only this machine can reach; the only ones an unauthenticated service may bind.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True when `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """How the guard service runs: its policy, its lineage store, its limits and where it listens."""

    model_config = SettingsConfigDict(env_prefix="FRESHGUARD_", extra="ignore", frozen=True)

    policy: Path = Field(description="The policy file (YAML) checks run under.")
    database_url: str = Field("sqlite:///freshguard.db", description="The lineage store's URL.")
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest request body accepted, in bytes.")
    max_records: int = Field(100_000, gt=0, description="Most records one check may carry.")
    watch_every_s: float = Field(
        15.0, ge=0, description="Seconds between SLA evaluations (incidents, alerts); 0 turns the watcher off."
    )
    store_timeout_s: float = Field(
        2.0, gt=0, le=60, description="Deadline of each lineage store operation of a request; past it, 503."
    )
    writer_process: bool = Field(
        True, description="Commit lineage in a process of its own beside each worker (False: on the worker's threads)."
    )
    policy_sync_s: float = Field(
        1.0, ge=0, le=60, description="How often a worker looks for a policy version published by another one."
    )
    head_timeout_s: float = Field(
        10.0, gt=0, le=300, description="A connection that has not sent its whole request head by then is closed."
    )
    body_timeout_s: float = Field(
        10.0, gt=0, le=300, description="A request body that has not arrived by then (then at 64 KiB/s) answers 408."
    )
    host: str = Field("127.0.0.1", description="Where to listen; loopback only unless API keys are configured.")
    port: int = Field(8000, ge=0, le=65535)
    keys_file: Path | None = Field(None, description="The API keys file (YAML or JSON): names, roles, SHA-256 digests.")
    api_keys: str | None = Field(
        None, repr=False, description="More API keys: name:role[:source]:sha256hex, comma-separated (digests only)."
    )
    openai_upstream_url: str | None = Field(
        None, description="Where the OpenAI-compatible gateway forwards model calls, e.g. https://api.openai.com/v1."
    )
    openai_upstream_key: str | None = Field(None, repr=False, description="The API key the gateway sends upstream.")
    openai_on_block: Literal["withhold", "refuse"] = Field(
        "withhold",
        description="What the gateway does with a blocked record: withhold it (a notice) or refuse the call.",
    )
    openai_timeout_s: float = Field(300.0, gt=0, description="How long the gateway waits for the upstream model.")
    litellm_force_on_block: Literal["withhold", "refuse"] | None = Field(
        None,
        description="What the LiteLLM guardrail does with a blocked record, whatever the request's "
        "additional_provider_specific_params say (LiteLLM's end users can set those).",
    )

    retain_records: str = Field(
        "30d", description="How long the per-record rows of checks are kept ('off': forever); pruned in the background."
    )
    retain_runs: str = Field("30d", description="How long runs, their tallies and model-call links are kept ('off').")
    retain_heartbeats: str = Field("30d", description="How long every sync heartbeat is kept ('off').")
    retain_rollups: str = Field("400d", description="How long the per-minute figures health reads are kept ('off').")

    @field_validator("retain_records", "retain_runs", "retain_heartbeats", "retain_rollups")
    @classmethod
    def _duration_or_off(cls, value: str) -> str:
        if value.strip().lower() != "off":
            parse_duration(value)  # a ValueError that names the accepted forms
        return value

    def retention(self) -> Retention:
        """The retention these settings ask for."""

        def kept(value: str) -> timedelta | None:
            return None if value.strip().lower() == "off" else parse_duration(value)

        return Retention(
            records=kept(self.retain_records), runs=kept(self.retain_runs),
            heartbeats=kept(self.retain_heartbeats), rollups=kept(self.retain_rollups),
        )  # fmt: skip

    @field_validator("api_keys")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value is not None and value.strip() else None

    @property
    def keys_configured(self) -> bool:
        """True when API keys are configured (a keys file or FRESHGUARD_API_KEYS); False means open mode."""
        return self.keys_file is not None or self.api_keys is not None

    @model_validator(mode="after")
    def _loopback_unless_keys(self) -> Settings:
        # Without keys anyone who can reach the service could read every run: keep it on this machine.
        if not self.keys_configured and not is_loopback(self.host):
            raise ValueError(
                f"the service has no authentication (no API keys configured), so it only listens on loopback "
                f"(127.0.0.1, ::1, localhost), not {self.host!r}; configure API keys (FRESHGUARD_KEYS_FILE or "
                "FRESHGUARD_API_KEYS) to listen elsewhere"
            )
        return self
