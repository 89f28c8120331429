"""API keys: the `KeyRing` of hashed keys the service accepts, loaded once at start-up.

Keys come from a keys file (FRESHGUARD_KEYS_FILE, YAML or JSON, a list of entries) and/or the
FRESHGUARD_API_KEYS variable (`name:role[:source]:sha256hex`, comma-separated). Only SHA-256 hex
digests of keys are stored; a presented key is hashed and compared with every digest in constant
time. Neither a key nor a digest is ever put in a message or a log line.

    python -m api hash --name erp-sync --role source --source sap < key.txt
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from guard.errors import ConfigurationError

API_KEYS_ENV = "FRESHGUARD_API_KEYS"
KEYS_FILE_ENV = "FRESHGUARD_KEYS_FILE"
HASH_HELP = "make the digest with `python -m api hash < key.txt` (it prints a ready-to-paste entry)"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_ENTRY_MEMBERS = frozenset({"name", "role", "source", "key_sha256"})


class Role(StrEnum):
    """What a key may do; `admin` may do everything."""

    ADMIN = "admin"
    PIPELINE = "pipeline"
    SOURCE = "source"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One accepted key: its name (for people and logs), role, bound source, and the SHA-256 of the key."""

    name: str
    role: Role
    source: str | None = None
    digest: bytes = field(default=b"", repr=False)  # never shown: a digest lets anyone test guesses offline


def hash_key(key: str) -> str:
    """The SHA-256 hex digest of `key` (UTF-8), as a keys file stores it."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The keys the service accepts; empty means the service runs open (loopback only)."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._keys = tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._keys)} keys)"

    def lookup(self, presented: str) -> ApiKey | None:
        """The key whose digest matches `presented`, or None; compares against every entry, in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found: ApiKey | None = None
        for key in self._keys:
            # No early exit: the time taken does not tell which entry (or whether any) matched.
            if hmac.compare_digest(digest, key.digest) and found is None:
                found = key
        return found

    def names_by_role(self) -> dict[Role, list[str]]:
        """The names of the keys of each role present (for the start-up log: names only)."""
        named: dict[Role, list[str]] = {}
        for key in self._keys:
            named.setdefault(key.role, []).append(key.name)
        return named


class KeyFileError(ConfigurationError):
    """Keys that cannot be loaded; lists every problem, each naming where it is and what to do."""

    def __init__(self, origin: str, problems: Sequence[str]) -> None:
        self.origin = origin
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"API keys in {origin} are refused" + (f" ({count} problems):" if count > 1 else ":")
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in self.problems))


def load_keyring(keys_file: Path | None = None, api_keys: str | None = None) -> KeyRing:
    """The keys of `keys_file` and of an FRESHGUARD_API_KEYS value; KeyFileError names every problem."""
    keys: list[ApiKey] = []
    if keys_file is not None:
        keys += _from_file(keys_file)
    if api_keys is not None and api_keys.strip():
        keys += _from_env(api_keys)
    duplicates = sorted(name for name, n in Counter(k.name for k in keys).items() if n > 1)
    if duplicates:
        origin = " and ".join(o for o in (_file_origin(keys_file), _env_origin(api_keys)) if o)
        raise KeyFileError(
            origin,
            [f"the name {name!r} is used by more than one key; give every key its own name" for name in duplicates],
        )
    return KeyRing(keys)


def _file_origin(keys_file: Path | None) -> str:
    return f"keys file {keys_file} ({KEYS_FILE_ENV})" if keys_file is not None else ""


def _env_origin(api_keys: str | None) -> str:
    return API_KEYS_ENV if api_keys is not None and api_keys.strip() else ""


def _from_file(path: Path) -> list[ApiKey]:
    origin = _file_origin(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeyFileError(origin, [f"it cannot be read ({exc.strerror}); check the path and its permissions"]) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        # The parser's message may quote the file's text, so only its position is repeated.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KeyFileError(origin, [f"it is not YAML or JSON{where}; it must be a list of entries"]) from None
    if not isinstance(document, list) or not document:
        raise KeyFileError(
            origin,
            ["it must be a non-empty list of entries {name, role, source?, key_sha256}; "
             f"to run without keys (loopback only), unset {KEYS_FILE_ENV}"],
        )  # fmt: skip
    keys: list[ApiKey] = []
    problems: list[str] = []
    for number, entry in enumerate(document, start=1):
        key = _entry(entry, f"entry {number}", problems)
        if key is not None:
            keys.append(key)
    duplicates = sorted(name for name, n in Counter(k.name for k in keys).items() if n > 1)
    problems += [
        f"the name {name!r} is used by more than one entry; give every key its own name" for name in duplicates
    ]
    if problems:
        raise KeyFileError(origin, problems)
    return keys


def _from_env(value: str) -> list[ApiKey]:
    keys: list[ApiKey] = []
    problems: list[str] = []
    items = [item.strip() for item in value.split(",") if item.strip()]
    for number, item in enumerate(items, start=1):
        parts = [part.strip() for part in item.split(":")]
        if len(parts) not in (3, 4):
            problems.append(
                f"entry {number}: has {len(parts)} parts separated by ':'; write name:role:sha256hex, "
                "or name:source:SOURCE:sha256hex for a source key"
            )
            continue
        name, role, *rest = parts
        entry: dict[str, Any] = {"name": name, "role": role, "key_sha256": rest[-1]}
        if len(rest) == 2:
            entry["source"] = rest[0]
        key = _entry(entry, f"entry {number}", problems)
        if key is not None:
            keys.append(key)
    if problems:
        raise KeyFileError(API_KEYS_ENV, problems)
    return keys


def _entry(entry: object, where: str, problems: list[str]) -> ApiKey | None:
    """One entry as an ApiKey, or None with its problems appended (never quoting a key or digest)."""
    if not isinstance(entry, dict):
        problems.append(f"{where}: is not a mapping; write {{name, role, source?, key_sha256}}")
        return None
    name = entry.get("name")
    label = f"{where} ({name!r})" if isinstance(name, str) and name.strip() else where
    before = len(problems)
    unknown = sorted(str(member) for member in entry if member not in _ENTRY_MEMBERS)
    if unknown:
        problems.append(
            f"{label}: unknown member(s) {', '.join(unknown)}; an entry has name, role, source (source keys only) "
            "and key_sha256 — never the key itself"
        )
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{label}: `name` is missing or empty; name every key (it is what the logs show)")
    role_value = entry.get("role")
    role = Role(role_value) if role_value in [r.value for r in Role] else None
    if role is None:
        problems.append(f"{label}: `role` is {role_value!r}; use one of {', '.join(r.value for r in Role)}")
    source = entry.get("source")
    if role is Role.SOURCE and (not isinstance(source, str) or not source.strip()):
        problems.append(f"{label}: a source key must name its `source` (the policy's name for it, e.g. sap)")
    elif role is not None and role is not Role.SOURCE and source is not None:
        problems.append(f"{label}: `source` is given for a {role.value} key; only source keys are bound to a source")
    digest = entry.get("key_sha256")
    if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest.strip()):
        got = f"{len(digest.strip())} characters" if isinstance(digest, str) else type(digest).__name__
        problems.append(
            f"{label}: `key_sha256` must be the SHA-256 of the key as 64 hexadecimal characters (got {got}); "
            f"store the digest, never the key: {HASH_HELP}"
        )
    if len(problems) > before or role is None or not isinstance(name, str) or not isinstance(digest, str):
        return None
    bound = source.strip() if role is Role.SOURCE and isinstance(source, str) else None
    return ApiKey(name=name.strip(), role=role, source=bound, digest=bytes.fromhex(digest.strip()))


def hash_main(argv: Sequence[str] | None = None) -> int:
    """`python -m api hash`: read a key from stdin, print its SHA-256 and a ready-to-paste keys-file entry."""
    parser = argparse.ArgumentParser(
        prog="python -m api", description="Hash an API key read from standard input for the keys file."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    hasher = commands.add_parser("hash", help="read a key from stdin; print its SHA-256 and a ready-to-paste entry")
    hasher.add_argument("--name", default="NAME", help="the key's name in the entry")
    hasher.add_argument("--role", default="pipeline", choices=[r.value for r in Role])
    hasher.add_argument("--source", default=None, help="the source a source key is bound to")
    args = parser.parse_args(argv)
    key = sys.stdin.read().strip()
    if not key:
        print("no key on standard input; e.g. python -m api hash < key.txt", file=sys.stderr)
        return 2
    if len(key) < 32:
        print(f"warning: the key has {len(key)} characters; use at least 32 random ones", file=sys.stderr)
    digest = hash_key(key)
    entry = f"- name: {args.name}\n  role: {args.role}\n"
    if args.role == Role.SOURCE:
        entry += f"  source: {args.source or 'SOURCE'}\n"
    print(digest)
    print(f"# for the keys file ({KEYS_FILE_ENV}):\n{entry}  key_sha256: {digest}")
    return 0
