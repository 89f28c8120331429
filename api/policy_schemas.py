"""Bodies of the policy endpoints: the policy in force, a published version, the history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_PUBLISHED_EXAMPLE: dict[str, Any] = {
    "name": "support-assistant",
    "version": 2,
    "content_hash": "3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "media_type": "application/yaml",
    "published_by": "ops-admin",
    "published_at": "2026-11-22T12:00:00+00:00",
}


class _PolicyFacts(BaseModel):
    name: str
    version: int
    content_hash: str = Field(description="SHA-256 of the policy's meaning (layout and comments do not change it).")
    media_type: str = Field(description="How it was written: application/yaml or application/json.")
    published_by: str = Field(description="The API key name that published it, or `file:<path>` at start-up.")


class PolicyVersion(_PolicyFacts):
    """One published version of the policy (without its text)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PUBLISHED_EXAMPLE]})

    published_at: datetime


class PolicyInForce(_PolicyFacts):
    """The policy checks run under now: the version, the text as published, and the policy as JSON."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_PUBLISHED_EXAMPLE,
                    "text": "policy: support-assistant\nversion: 2\n...",
                    "document": {"policy": "support-assistant", "version": 2, "sources": {}, "objects": {}},
                }
            ]
        }
    )

    published_at: datetime | None = Field(description="When it was published; null if it never was (no store).")
    text: str = Field(description="The policy as it was published (YAML or JSON, comments kept).")
    document: dict[str, Any] = Field(description="The policy as the guard understood it, with every default filled.")


class PolicyPublished(PolicyVersion):
    """A version just published; the next check runs under it."""

    previous_version: int | None = Field(description="The version in force before this one.")


class PolicyHistory(BaseModel):
    """Every version published, newest first."""

    active_version: int = Field(description="The version checks run under now.")
    versions: list[PolicyVersion]
