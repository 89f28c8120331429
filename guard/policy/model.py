"""What a policy says, as pydantic models. Cross-references are checked in `checks_`."""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from guard._durations import format_duration, parse_duration

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    Field(json_schema_extra={"type": "string", "examples": ["90s", "15m", "1h30m", "PT15M"]}),
]
FieldType = Literal["str", "int", "float", "bool", "datetime"]
ConflictRule = Literal["prefer_owner", "newest", "block_all"]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Number = StrictInt | float
# Constructs Python's `re` accepts but polars' regex engine (Rust) refuses.
_UNSUPPORTED_REGEX = re.compile(r"\(\?<?[=!]|\(\?P=|\(\?>|\(\?\(|(?<!\\)\\[1-9]|\\g<")
Scalar = str | bool | StrictInt | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceSpec(_Strict):
    """A system that integrations copy data out of."""

    team: str | None = Field(None, description="who to talk to about this source")
    signing_key_env: EnvName | None = Field(
        None, description="environment variable holding the HMAC key its records are signed with"
    )


class FieldSpec(_Strict):
    """One field of an object's contract; checked with pandera."""

    type: FieldType
    required: StrictBool = False
    nullable: StrictBool = False
    min: Number | None = None
    max: Number | None = None
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1)
    pattern: str | None = None
    min_length: Annotated[StrictInt, Field(ge=0)] | None = None
    max_length: Annotated[StrictInt, Field(ge=0)] | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # Python's note on POSIX classes
                    re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
            unsupported = _UNSUPPORTED_REGEX.search(value)
            if unsupported:
                raise ValueError(
                    f"uses {unsupported.group(0)!r}: look-arounds, back-references and atomic groups are not "
                    "supported by the contract engine (polars); rewrite the pattern without them"
                )
        return value

    @model_validator(mode="after")
    def _checks_fit_type(self) -> FieldSpec:
        numeric = self.type in ("int", "float")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"min and max apply to int and float fields, not {self.type}")
        if any(isinstance(bound, float) and math.isnan(bound) for bound in (self.min, self.max)):
            raise ValueError("min and max must be numbers, not NaN")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        stringy = ("pattern", "min_length", "max_length")
        if self.type != "str" and any(getattr(self, name) is not None for name in stringy):
            raise ValueError(f"pattern, min_length and max_length apply to str fields, not {self.type}")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) is greater than max_length ({self.max_length})")
        if self.in_ is not None:
            if self.type == "datetime":
                raise ValueError("`in` does not apply to datetime fields")
            wrong = [v for v in self.in_ if not value_has_type(v, self.type)]
            if wrong:
                raise ValueError(f"`in` lists values that are not {self.type}: {wrong}")
        return self


def value_has_type(value: object, field_type: str) -> bool:
    """Whether a JSON value is of a contract type (bool is never a number; int is a float)."""
    if field_type == "str":
        return isinstance(value, str)
    if field_type == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if field_type == "int":
        return isinstance(value, int)
    if field_type == "float":
        return isinstance(value, int | float)
    return isinstance(value, str)


class ObjectSpec(_Strict):
    """A kind of business data: who owns it, who may copy it, how fresh it must be."""

    owner: Name = Field(description="the one authoritative source (system of record)")
    replicas: list[Name] = Field(default_factory=list, description="sources allowed to serve copies")
    max_age: Duration = Field(description="freshness SLA: older copies are blocked")
    warn_age: Duration | None = Field(None, description="older than this is allowed with a warning")
    on_conflict: ConflictRule = "prefer_owner"
    require_lineage: StrictBool = False
    fields: dict[Name, FieldSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ages_ordered(self) -> ObjectSpec:
        if self.max_age <= timedelta(0):
            raise ValueError("max_age must be longer than zero")
        if self.warn_age is not None and self.warn_age >= self.max_age:
            raise ValueError(
                f"warn_age ({format_duration(self.warn_age)}) must be shorter than "
                f"max_age ({format_duration(self.max_age)})"
            )
        return self


def _cron(value: object) -> object:
    """A cron expression (minute hour day month weekday), or `HH:MM` for a daily time."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    daily = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if daily:
        return f"{int(daily.group(2))} {int(daily.group(1))} * * *"
    from croniter import croniter

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"{value!r} is not a cron expression of five fields (minute hour day month weekday, "
            "e.g. '* 6-21 * * 1-5') nor a daily time such as '06:00'"
        )
    if re.search(r"[LW#?]", text, re.IGNORECASE):
        raise ValueError(f"{value!r} uses L, W, # or ?; write the days with numbers, ranges, lists and steps")
    return text


def _zone(value: object) -> object:
    if not isinstance(value, str):
        return value
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone name such as 'Europe/Berlin' or 'UTC'") from None
    return value


Cron = Annotated[str, BeforeValidator(_cron), Field(json_schema_extra={"examples": ["* 6-21 * * 1-5", "06:00"]})]
TimeZone = Annotated[str, BeforeValidator(_zone), Field(json_schema_extra={"examples": ["Europe/Berlin", "UTC"]})]


class ScheduleSpec(_Strict):
    """When an integration is expected to sync, so that a planned pause is not a breach."""

    timezone: TimeZone = Field("UTC", description="the IANA time zone the cron expressions are read in")
    active: Cron | None = Field(
        None,
        description="cron expression of the minutes syncs are expected in (e.g. '* 6-21 * * 1-5': weekdays "
        "06:00-21:59); outside, freshness lag is not judged, and inside, it counts from the start of the period",
    )
    expected_by: Cron | None = Field(
        None,
        description="cron expression (or 'HH:MM') of the deadlines a sync is due by (e.g. '0 6 * * 1-5'); "
        "each deadline needs a sync since the one before; max_lag is then not applied",
    )
    warn_before: Duration | None = Field(
        None,
        description="how long before an expected_by deadline a load that has not arrived yet makes the point "
        "degraded (e.g. 30m), so that people hear of it before the deadline is missed",
    )


class SLASpec(_Strict):
    """Operational SLA of one integration point (source, object)."""

    source: Name
    object: Name
    max_lag: Duration | None = Field(None, description="a sync heartbeat older than this means behind")
    max_block_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    window: Duration = timedelta(hours=1)
    recovery: Duration | None = None
    notify: list[Name] = Field(default_factory=list)
    schedule: ScheduleSpec | None = None
    retire_writers_after: Duration = Field(
        timedelta(days=7),
        description="a writer (sync job) silent this long is retired: shown as retired, no longer counted in the lag",
    )
    runbook: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000)] | None = Field(
        None, description="an http(s) URL of what to do when the point breaks; in alerts and on the dashboard"
    )


class NotifySpec(_Strict):
    """A notification channel; its URL (and PagerDuty's routing key) live in environment variables."""

    kind: Literal["webhook", "slack", "pagerduty"] = Field(
        "webhook", description="webhook: generic JSON; slack: Slack incoming-webhook messages; pagerduty: Events API v2"
    )
    webhook_env: EnvName | None = Field(
        None, description="variable holding the URL (for pagerduty: the Events API URL; default PagerDuty's own)"
    )
    routing_key_env: EnvName | None = Field(None, description="pagerduty: variable holding the integration key")

    @model_validator(mode="after")
    def _what_each_kind_needs(self) -> NotifySpec:
        if self.kind != "pagerduty" and self.webhook_env is None:
            raise ValueError(f"a {self.kind} channel needs webhook_env: the variable that holds its URL")
        if self.kind == "pagerduty" and self.routing_key_env is None:
            raise ValueError("a pagerduty channel needs routing_key_env: the variable that holds its integration key")
        return self


class Policy(_Strict):
    """A whole policy file. Load one with `guard.load_policy`."""

    policy: Name = Field(description="the policy's name")
    version: Annotated[StrictInt, Field(ge=0)]
    clock_skew: Duration = timedelta(minutes=1)
    naive_timestamps: Literal["reject", "utc"] = "reject"
    sources: dict[Name, SourceSpec] = Field(min_length=1)
    objects: dict[Name, ObjectSpec] = Field(min_length=1)
    slas: list[SLASpec] = Field(default_factory=list)
    notify: dict[Name, NotifySpec] = Field(default_factory=dict)

    _origin: str = PrivateAttr("<policy>")

    @property
    def origin(self) -> str:
        """Where the policy was read from (its file), for messages."""
        return self._origin

    @property
    def name(self) -> str:
        """The policy's name (the file's `policy:` member)."""
        return self.policy

    def content_hash(self) -> str:
        """SHA-256 of the policy's meaning: layout, comments and key order do not change it."""
        return _policy_hash(self.model_dump(mode="json", by_alias=True))

    def team_of(self, source: str) -> str | None:
        """The team behind a source, if the policy names one."""
        spec = self.sources.get(source)
        return spec.team if spec else None


def _policy_hash(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
