"""Data contracts in: an Open Data Contract Standard (ODCS v3) contract as Freshguard policy objects.

`translate_contract(document)` is pure: a parsed contract in, policy-file fragments out (a source
with its team, one object per schema object with its owner, fields and max_age), and every part
of the contract that carries a check or an agreement Freshguard could not translate, each with
its path in the contract and why. Descriptions, tags, pricing, roles and support channels are
information, not checks, and are left out without a note.

What maps to what:

- the source is the system the contract's data is served from (the first of `servers`, or the one
  named); its team is the contract's `team.name`, else the username of the member whose role is
  an owner;
- each `schema` object becomes an object owned by that source; its `properties` become `fields`:
  `logicalType` gives the type (`string` str, `integer` int, `number` float, `boolean` bool,
  `timestamp` datetime, `date` str with a date pattern), `required: true` a required field and
  `required: false` (the default) a nullable one, `enum` the allowed values, `logicalTypeOptions`
  the bounds (`minimum`, `maximum`, `minLength`, `maxLength`, `pattern`);
- the `latency` (or `freshness`) SLA property, with its unit, becomes `max_age` of the object its
  `element` names (of every object when it names none of them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from guard._durations import format_duration, parse_duration
from guard.errors import InputError
from guard.policy._odcs_fields import NAME as _NAME
from guard.policy._odcs_fields import Untranslated, anchored, field_specs, listed, type_words, unknown_members

__all__ = ["ContractTranslation", "Untranslated", "anchored", "merge_into", "sla_duration", "translate_contract"]

_SECONDS_PER_UNIT = {
    **dict.fromkeys(("ms", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "wk", "week", "weeks"), 604800.0),
}
_VARIABLE_UNITS = frozenset({"y", "yr", "yrs", "year", "years", "mo", "month", "months"})
_FRESHNESS = frozenset({"latency", "ly", "freshness"})
_SLA_HINTS = {
    "frequency": "a sync cadence is checked per integration point: add an SLA with max_lag under `slas`",
    "fy": "a sync cadence is checked per integration point: add an SLA with max_lag under `slas`",
    "timetorepair": "recovery is set per integration point: add an SLA with recovery under `slas`",
    "tr": "recovery is set per integration point: add an SLA with recovery under `slas`",
    "errorrate": "a tolerated block rate is set per integration point: max_block_rate under `slas`",
    "er": "a tolerated block rate is set per integration point: max_block_rate under `slas`",
}


@dataclass(frozen=True, slots=True)
class ContractTranslation:
    """Policy-file fragments from one contract: `sources` and `objects` as a policy file writes them."""

    source: str
    sources: dict[str, dict[str, Any]]
    objects: dict[str, dict[str, Any]]
    untranslated: tuple[Untranslated, ...] = field(default_factory=tuple)
    #: Per object, what the contract itself says nothing about: `fields` (it lists no properties) and
    #: `max_age` (it states no latency; a `--max-age` default may stand in). A merge keeps the policy's own.
    unstated: dict[str, frozenset[str]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The fragments as one mapping (`sources:` and `objects:`), ready to paste into a policy."""
        return {"sources": self.sources, "objects": self.objects}


_OBJECT_DESCRIPTIVE = frozenset({
    "id", "name", "businessName", "description", "physicalName", "physicalType", "logicalType", "tags",
    "dataGranularityDescription", "authoritativeDefinitions", "customProperties", "properties", "context",
})  # fmt: skip


def translate_contract(
    document: object,
    *,
    origin: str = "<contract>",
    source: str | None = None,
    default_max_age: timedelta | None = None,
) -> ContractTranslation:
    """Translate an ODCS v3 contract; raise InputError when the document is not one."""
    contract = _require_contract(document, origin)
    notes: list[Untranslated] = []
    source_name = source if source is not None else _served_from(contract, origin, notes)
    if not _NAME.match(source_name):
        raise InputError(
            f"contract {origin}: {source_name!r} cannot name a source; use letters, digits and _ . : - (--source NAME)"
        )
    team = _team(contract.get("team"), notes)
    schema = contract.get("schema") or []
    if not isinstance(schema, list):
        raise InputError(f"contract {origin}: `schema` must be a list of objects, got {type_words(schema)}")
    names = _object_names(schema, notes)
    ages = _max_ages(contract, schema, names, notes)
    objects: dict[str, dict[str, Any]] = {}
    unstated: dict[str, frozenset[str]] = {}
    for index, element in names.items():
        name = _object_name(schema[index])
        spec: dict[str, Any] = {"owner": source_name}
        properties = element.get("properties")
        unstated[name] = frozenset(
            {
                *(() if index in ages else ("max_age",)),
                *(() if isinstance(properties, list) and properties else ("fields",)),
            }
        )
        age = ages.get(index, default_max_age)
        if age is not None:
            spec["max_age"] = format_duration(age)
        else:
            notes.append(
                Untranslated(
                    f"schema[{index}] ({name})",
                    "the contract states no latency SLA for it, so max_age is missing: add one (or pass --max-age)",
                )
            )
        spec["fields"] = field_specs(element, f"schema[{index}]", notes)
        objects[name] = spec
    return ContractTranslation(
        source=source_name,
        sources={source_name: {"team": team} if team else {}},
        objects=objects,
        untranslated=tuple(notes),
        unstated=unstated,
    )


def _require_contract(document: object, origin: str) -> Mapping[str, Any]:
    if not isinstance(document, dict):
        what = "empty" if document is None else f"a {type(document).__name__}"
        raise InputError(f"contract {origin}: an ODCS contract is a mapping of keys, the file is {what}")
    if document.get("kind") != "DataContract":
        raise InputError(
            f"contract {origin}: kind is {document.get('kind')!r}, not 'DataContract'; is this an ODCS contract?"
        )
    version = str(document.get("apiVersion", ""))
    if not version.startswith("v3."):
        raise InputError(
            f"contract {origin}: apiVersion is {version or 'missing'}; this command reads ODCS v3 contracts "
            "(apiVersion v3.x): upgrade the contract to v3 first"
        )
    return document


def _served_from(contract: Mapping[str, Any], origin: str, notes: list[Untranslated]) -> str:
    listed_servers = contract.get("servers")
    if listed_servers is not None and not isinstance(listed_servers, list):
        raise InputError(
            f"contract {origin}: `servers` must be a list of servers (- server: NAME), got "
            f"{type_words(listed_servers)}; fix it, or name the source with --source NAME"
        )
    servers = [s for s in listed_servers or [] if isinstance(s, dict) and s.get("server")]
    if not servers:
        raise InputError(
            f"contract {origin}: `servers` names no server to take as the source system; name it with --source NAME"
        )
    name = str(servers[0]["server"])
    if len(servers) > 1:
        others = ", ".join(str(s["server"]) for s in servers[1:])
        notes.append(
            Untranslated(
                "servers",
                f"{len(servers)} servers; {name} is taken as the source (not {others}); --source chooses",
            )
        )
    return name


def _team(team: object, notes: list[Untranslated]) -> str | None:
    members: Sequence[object]
    if isinstance(team, dict):
        if team.get("name"):
            return str(team["name"])
        members = team.get("members") or []
    elif isinstance(team, list):
        members = team
    else:
        if team is not None:
            notes.append(Untranslated("team", f"must be a mapping (name, members) or a list, got {type_words(team)}"))
        return None
    current = [m for m in members if isinstance(m, dict) and m.get("username") and not m.get("dateOut")]
    owners = [m for m in current if "owner" in str(m.get("role", "")).lower()]
    if owners:
        return str(owners[0]["username"])
    notes.append(Untranslated("team", "names neither a team nor a current member with an owner role; no team set"))
    return None


def _object_name(element: Mapping[str, Any]) -> str:
    return str(element.get("name", ""))


def _object_names(schema: list[Any], notes: list[Untranslated]) -> dict[int, Mapping[str, Any]]:
    kept: dict[int, Mapping[str, Any]] = {}
    seen: set[str] = set()
    for index, element in enumerate(schema):
        path = f"schema[{index}]"
        if not isinstance(element, dict) or not element.get("name"):
            notes.append(Untranslated(path, "a schema object without a name; not translated"))
            continue
        name = _object_name(element)
        if not _NAME.match(name):
            notes.append(Untranslated(f"{path} ({name})", "not a usable object name (letters, digits, _ . : -)"))
        elif name in seen:
            notes.append(Untranslated(f"{path} ({name})", "a second schema object of the same name; not translated"))
        else:
            seen.add(name)
            kept[index] = element
            for key, of in (("quality", "quality rules"), ("relationships", "relationships")):
                for position, _ in enumerate(listed(element, key, path, notes, of=of)):
                    notes.append(Untranslated(f"{path}.{key}[{position}]", _object_level(key)))
            unknown_members(element, _OBJECT_DESCRIPTIVE | {"quality", "relationships"}, path, notes)
    return kept


def _object_level(key: str) -> str:
    if key == "quality":
        return "a quality rule over the whole dataset; Freshguard checks records one by one"
    return "a relationship between datasets; Freshguard checks records one by one"


# --- SLA: latency into max_age ------------------------------------------------------------------


def _max_ages(
    contract: Mapping[str, Any],
    schema: list[Any],
    names: Mapping[int, Mapping[str, Any]],
    notes: list[Untranslated],
) -> dict[int, timedelta]:
    default_element = contract.get("slaDefaultElement")
    ages: dict[int, timedelta] = {}
    for position, entry in enumerate(listed(contract, "slaProperties", "", notes, of="SLA properties")):
        path = f"slaProperties[{position}]"
        if not isinstance(entry, dict):
            notes.append(Untranslated(path, f"an SLA property must be a mapping, got {type_words(entry)}; not read"))
            continue
        prop = str(entry.get("property", ""))
        if prop.lower() not in _FRESHNESS:
            hint = _SLA_HINTS.get(prop.lower(), "not a check Freshguard makes")
            notes.append(Untranslated(f"{path} ({prop} {_value_words(entry)})", hint))
            continue
        try:
            age = sla_duration(entry.get("value"), entry.get("unit"))
        except ValueError as exc:
            notes.append(Untranslated(f"{path} ({prop})", f"{exc}; max_age not set from it"))
            continue
        element = entry.get("element") or default_element
        targets = _targets(element, names)
        if element:
            notes.append(
                Untranslated(
                    f"{path}.element ({element})",
                    "Freshguard measures a copy's age from its observed_at/updated_at, not from a field",
                )
            )
        if element and targets == list(names) and len(names) > 1:
            notes.append(Untranslated(f"{path}.element ({element})", "names no schema object: applied to all"))
        for index in targets:
            if index in ages and ages[index] != age:
                notes.append(
                    Untranslated(
                        f"{path} ({prop})",
                        f"a second latency for {_object_name(schema[index])}; kept the stricter "
                        f"{format_duration(min(age, ages[index]))}",
                    )
                )
            ages[index] = min(age, ages.get(index, age))
    return ages


def _targets(element: object, names: Mapping[int, Mapping[str, Any]]) -> list[int]:
    if isinstance(element, str) and element:
        wanted = {part.strip().split(".")[0] for part in element.split(",")}
        named = [
            index
            for index, spec in names.items()
            if spec.get("name") in wanted or (spec.get("physicalName") and spec.get("physicalName") in wanted)
        ]
        if named:
            return named
    return list(names)


def sla_duration(value: object, unit: object) -> timedelta:
    """An SLA value with its ODCS unit (`4` `d`, `30` `minutes`) as a duration; ValueError when it is not one.

    A value without a unit must say its unit itself (`PT4H`, `1h30m`): a bare number, written as a
    number or as text (`"4"`), is refused, whatever the policy's own reading of numbers as seconds.
    """
    if isinstance(value, str) and unit is None:
        if _is_number(value):
            raise ValueError(f"the value {value!r} has no unit (d, h, m, s ...)")
        try:
            return parse_duration(value)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"the value {value!r} is not a duration") from exc
    if unit is None:
        raise ValueError(f"the value {value!r} has no unit (d, h, m, s ...)")
    name = str(unit).strip().lower()
    if name in _VARIABLE_UNITS:
        raise ValueError(f"the unit {unit!r} has no fixed length; write the latency in days, hours or minutes")
    if name not in _SECONDS_PER_UNIT:
        raise ValueError(f"the unit {unit!r} is not one of d, h, m, s (or their names)")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"the value {value!r} is not a number")
    too_long = f"the value {value!r} {unit} is longer than any duration can be (at most {_LONGEST_DAYS:,} days)"
    try:
        amount = float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(too_long) from None
    except ValueError:
        raise ValueError(f"the value {value!r} is not a number") from None
    if amount == math.inf:
        raise ValueError(too_long)
    if not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"the value {value!r} is not a positive number")
    try:
        return timedelta(seconds=amount * _SECONDS_PER_UNIT[name])
    except OverflowError:
        raise ValueError(too_long) from None


_LONGEST_DAYS = timedelta.max.days


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _value_words(entry: Mapping[str, Any]) -> str:
    unit = entry.get("unit")
    return f"{entry.get('value')}" + (f" {unit}" if unit else "")


def merge_into(policy: Mapping[str, Any], translation: ContractTranslation) -> tuple[dict[str, Any], list[str]]:
    """A policy document with the contract's source and objects merged in, and what the merge did, in words.

    The contract speaks for its own objects: an object already in the policy takes the contract's
    owner, and its fields and max_age where the contract states them. What the contract says
    nothing about is kept, and said: the fields when it lists no properties, max_age when it states
    no latency (a `--max-age` default does not replace a policy's own), and always what a contract
    cannot say (replicas, warn_age, the conflict rule). A new owner that was a replica is no longer
    one. A source already declared keeps its signing key and takes the contract's team.
    """
    merged: dict[str, Any] = {**policy}
    sources: dict[str, Any] = dict(merged.get("sources") or {})
    objects: dict[str, Any] = dict(merged.get("objects") or {})
    said: list[str] = []
    for name, spec in translation.sources.items():
        known = sources.get(name)
        if not isinstance(known, dict):
            sources[name] = spec
            said.append(f"sources.{name}: added" + (f" (team {spec['team']})" if spec.get("team") else ""))
        elif spec.get("team") and known.get("team") != spec["team"]:
            sources[name] = {**known, "team": spec["team"]}
            said.append(f"sources.{name}: team {known.get('team') or '(none)'} → {spec['team']}")
    for name, spec in translation.objects.items():
        known = objects.get(name)
        if not isinstance(known, dict):
            objects[name] = spec
            said.append(f"objects.{name}: added")
            continue
        objects[name], words = _merge_object(name, known, spec, translation.unstated.get(name, frozenset()))
        said.extend(words)
    merged["sources"], merged["objects"] = sources, objects
    return merged, said


_UNSTATED_WORDS = {
    "fields": "the contract lists no properties for it",
    "max_age": "the contract states no latency for it",
}


def _merge_object(
    name: str, known: Mapping[str, Any], spec: Mapping[str, Any], unstated: frozenset[str]
) -> tuple[dict[str, Any], list[str]]:
    """One object already in the policy with the contract's word on it, and what the merge did to it."""
    merged: dict[str, Any] = {**known, "owner": spec["owner"]}
    taken, held = ["owner"], []
    for key in ("fields", "max_age"):
        if key in unstated and key in known:
            held.append(key)
        elif key in spec:
            merged[key] = spec[key]
            taken.append(key)
    kept = [key for key in known if key not in ("owner", "fields", "max_age")]
    words = [f"objects.{name}: {_and(taken)} from the contract; {', '.join(kept) or 'nothing'} kept"]
    for key in held:
        shown = f" {known[key]}" if key == "max_age" else ""
        words.append(f"objects.{name}: {key}{shown} kept from the policy: {_UNSTATED_WORDS[key]}")
    replicas = known.get("replicas")
    if isinstance(replicas, list) and spec["owner"] in replicas:
        merged["replicas"] = [replica for replica in replicas if replica != spec["owner"]]
        words.append(f"objects.{name}: replica {spec['owner']} dropped: it is the owner now")
    return merged, words


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
