"""The record envelope as a typed model, for Python callers who prefer it to plain dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class LineageHop(BaseModel):
    """One hop a record took on its way here, origin first."""

    model_config = ConfigDict(extra="forbid")

    system: str = Field(min_length=1)
    at: AwareDatetime


class Record(BaseModel):
    """A record about one business entity, as the record envelope (docs/records.md) describes it.

    `Guard.check` takes these or plain dicts; dicts are checked as sent (timestamps
    and signatures included), a `Record` is first turned into its JSON form.
    """

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, examples=["doc-17"])
    object: str = Field(min_length=1, examples=["customer"])
    key: str = Field(min_length=1, examples=["C-1042"])
    source: str = Field(min_length=1, examples=["sap"])
    observed_at: datetime | None = Field(None, description="when this copy was read from `source`")
    updated_at: datetime | None = Field(None, description="when the system of record last changed it")
    fields: dict[str, Any] | None = None
    content: str | None = Field(None, description="the text the model will see")
    lineage: list[LineageHop] | None = None
    signature: str | None = Field(None, description="hex HMAC-SHA256 over the canonical form")

    def to_envelope(self) -> dict[str, Any]:
        """The JSON envelope of this record (members left unset are omitted)."""
        return self.model_dump(mode="json", exclude_none=True)


def as_envelope(record: object) -> object:
    """A dict envelope for a `Record`; anything else is passed through to be checked as is."""
    if isinstance(record, Record):
        return record.to_envelope()
    return record
