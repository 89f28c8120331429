"""The guard's limits, one definition each: text the lineage store can keep (bounded lengths, no NUL,
no lone surrogate) and how long a store operation may take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: How long one lineage store operation on the request path may take, unless the store is opened with another.
DEFAULT_STORE_TIMEOUT_S = 2.0
#: The longest record `id` and `key` (characters): the store indexes them, and an index row has a size limit.
MAX_ID_LENGTH = 500
#: The longest name of an object, a source, a pipeline or a consumer's member (characters).
MAX_NAME_LENGTH = 200
#: The longest text value a consumer may carry (characters).
MAX_CONSUMER_TEXT = 1000
#: How deeply a consumer's values may nest.
MAX_CONSUMER_DEPTH = 8


def text_problem(value: str, limit: int) -> str | None:
    """What keeps `value` out of the store (too long, a NUL, a lone surrogate), or None when it may be kept."""
    if len(value) > limit:
        return f"is {len(value):,} characters long; at most {limit:,} are taken"
    if "\x00" in value:
        return "holds a NUL character (\\u0000), which the store cannot keep; remove it"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (text that is not valid Unicode, such as \\udc00); send valid UTF-8"
    return None


def consumer_problem(consumer: Mapping[str, Any]) -> str | None:
    """What keeps a check's `consumer` out of the store, naming the member (`consumer.model: ...`), or None."""
    return _value_problem("consumer", consumer, 0)


def _value_problem(path: str, value: Any, depth: int) -> str | None:
    if depth > MAX_CONSUMER_DEPTH:
        return f"{path} nests more than {MAX_CONSUMER_DEPTH} levels deep; flatten it"
    if isinstance(value, str):
        problem = text_problem(value, MAX_CONSUMER_TEXT)
        return None if problem is None else f"{path} {problem}"
    if isinstance(value, Mapping):
        for name, item in value.items():
            problem = text_problem(name, MAX_NAME_LENGTH) if isinstance(name, str) else None
            if problem is not None:
                return f"{path} has a member name that {problem}"
            problem = _value_problem(f"{path}.{name}", item, depth + 1)
            if problem is not None:
                return problem
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value):
            problem = _value_problem(f"{path}[{position}]", item, depth + 1)
            if problem is not None:
                return problem
    return None
