from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

class Unsupported(Exception): ...  # noqa: N818  # the C code's "hand it back", not an error a user sees

def canonical_json(mapping: Mapping[str, Any], exclude: frozenset[str] | set[str] | None) -> bytes: ...
def screen(
    records: Sequence[Any],
    limits: Mapping[str, tuple[Any, float, frozenset[str], str, bool]],
    signing: Mapping[str, bytes],
    skew: float,
    parsed: dict[str, tuple[datetime, float]],
    stamp: Callable[[str], tuple[datetime, float] | None],
    verify: Callable[[Mapping[str, Any], str, bytes], bool],
    age_reason: Callable[[str, float, str, Any], Any],
    columns: tuple[list[Any], ...],
    digest: Callable[[bytes, bytes, str], bytes],
    unsigned_members: frozenset[str],
) -> list[int]: ...
def field_values(rows: Sequence[Mapping[str, Any] | None], names: Sequence[str]) -> list[list[Any]]: ...
def superseded(
    objects: list[Any], keys: list[Any], updated: list[Any], watermarks: dict[Any, Any]
) -> list[tuple[int, datetime]]: ...
def conflict_groups(objects: list[Any], keys: list[Any], reasons: list[Any], aging: Any) -> list[list[int]]: ...
def all_identical(records: list[Any]) -> bool | None: ...
def record_rows(
    run_id: str,
    columns: tuple[list[Any], ...],
    stamp: Callable[[datetime], str] | None,
    blake2b: Callable[..., Any],
    digest_size: dict[str, int],
    content_hash: Callable[[Any], str | None],
    words: Callable[[Any], tuple[str, str]],
    actions: tuple[tuple[Any, str], ...],
    dumps: Callable[..., bytes],
    sort_keys: dict[str, int],
) -> list[tuple[Any, ...]]: ...
def read_members(records: list[Any], names: tuple[str, ...], nested: str, nested_names: tuple[str, ...]) -> int: ...
def owner_versions(
    objects: list[Any], keys: list[Any], sources: list[Any], updated: list[Any], actions: list[Any],
    owners: dict[str, str], block: Any,
) -> dict[tuple[str, str], datetime]: ...  # fmt: skip
def fold(
    reasons: list[Any], aging: Any, allow: Any, warn: Any, block: Any
) -> tuple[list[Any], list[tuple[Any, ...]]]: ...
def members_by_object(
    objects: list[Any], fields: list[Any], wanted: tuple[str, ...], skip: set[int] | frozenset[int]
) -> dict[str, tuple[list[int], list[Any]]]: ...
def all_storable(values: list[Any]) -> bool | None: ...
def tally(
    sources: Any, objects: Any, actions: Any, ages: Any, reasons: Any, bounds: tuple[float, ...], block: Any, warn: Any
) -> list[tuple[Any, Any, int, int, int, int, dict[str, int], list[int], float | None, float]] | None: ...
