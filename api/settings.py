"""The service's settings, read from FRESHGUARD_* environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    host: str = Field("127.0.0.1", description="Where to listen; loopback only until the service has API keys.")
    port: int = Field(8000, ge=0, le=65535)

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        # The service has no authentication yet: anyone who can reach it could read every run.
        if not is_loopback(host):
            raise ValueError(
                f"the service has no authentication yet, so it only listens on loopback "
                f"(127.0.0.1, ::1, localhost), not {host!r}; put an authenticating proxy in front of it"
            )
        return host
