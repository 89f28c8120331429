"""Regular expressions as the contract engine (polars, Rust regex) reads them, and how Python's `re` agrees.

A contract's `pattern` must match at the start of a value, as pandera's `str_matches`
does, with every alternative anchored. The per-record path runs Python's `re`, whose
reading differs from Rust's in places (`\\s`, `\\B`, Unicode classes, case folding,
`$` before a final newline). `pattern_forms` gives the Python forms that decide exactly
as polars does, and says when only polars itself can decide (then `polars_matches` asks it).
"""

from __future__ import annotations

import array
import functools
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def anchored_pattern(pattern: str) -> str:
    """The pattern as polars runs it: the whole of it must match at the start of the value.

    pandera's `str_matches` only prefixes `^`, which would anchor the first alternative
    of `a|b` alone; the group keeps every alternative anchored. Leading flags (`(?i)`)
    become the group's own, as pandera also compiles the pattern with Python's `re`,
    which takes bare flags only at the very start.
    """
    leading = _LEADING_FLAGS.match(pattern)
    if leading is None:
        return f"^(?:{pattern})"
    flags = "".join(dict.fromkeys(leading.group().replace("(?", "").replace(")", "")))
    end_of_comment = "\n" if "x" in flags else ""  # a trailing `# comment` must not swallow the `)`
    return f"^(?{flags}:{pattern[leading.end() :]}{end_of_comment})"


@dataclass(frozen=True, slots=True)
class PatternForms:
    """A contract pattern as polars runs it, and as Python's `re` decides it the same way.

    `ascii` is a Python pattern exact on ASCII text (None: ask polars). `text` says whether
    Python can decide any text too; `tables` whether that needs Rust's own `\\d` and `\\w`
    (Python's differ: Python's `\\w` takes superscript digits, Rust's takes combining marks).
    """

    source: str
    anchored: str
    ascii: str | None
    text: bool
    tables: bool


def pattern_forms(pattern: str) -> PatternForms:
    """How a contract pattern is decided in Python so that it agrees with polars."""
    anchored = anchored_pattern(pattern)
    translated = scan(pattern, None)
    if translated is None:
        return PatternForms(pattern, anchored, None, text=False, tables=False)
    form, traits = translated
    # Case folding differs between the engines outside ASCII (Python folds `İ` to `i`, Rust does not).
    ascii_form = form if not (traits.case_insensitive and traits.non_ascii) else None
    return PatternForms(pattern, anchored, ascii_form, text=not traits.case_insensitive, tables=traits.tables)


def python_pattern(pattern: str) -> str | None:
    """The pattern as Python's `re` must see it to decide ASCII text as polars does, or None.

    Python's `$` also matches before a final newline (polars': only at the end), and its
    `\\s` takes \\x1c-\\x1f (Rust's White_Space does not); constructs the two engines read
    differently (POSIX classes, class set operations, `\\<`, possessive quantifiers) give None.
    """
    return pattern_forms(pattern).ascii


@dataclass(frozen=True, slots=True)
class _Traits:
    case_insensitive: bool
    non_ascii: bool
    tables: bool


# Rust's White_Space (stable since Unicode 6.3), as Python class ranges.
_WHITE_SPACE = ((0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))  # fmt: skip
_LETTER_ESCAPES = frozenset("ntrfva")
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}
_HEX = frozenset("0123456789abcdefABCDEF")
_LEADING_FLAGS = re.compile(r"(?:\(\?[A-Za-z]+\))+")
_COUNTED = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_FLAG_GROUP = re.compile(r"\(\?([imsu]*)(?:-([ims]*))?([:)])")
_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges)


def _complement(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for low, high in ranges:
        if low > start:
            out.append((start, low - 1))
        start = high + 1
    if start <= 0x10FFFF:
        out.append((start, 0x10FFFF))
    return out


_SPACE_BODIES = {"s": _class_body(_WHITE_SPACE), "S": _class_body(_complement(_WHITE_SPACE))}


def scan(pattern: str, tables: Mapping[str, str] | None) -> tuple[str, _Traits] | None:
    """The Python form of a pattern (None when the two engines may read it differently).

    With `tables` (class bodies of Rust's `\\d`, `\\D`, `\\w`, `\\W`), the form is exact on
    any text; without, `\\d`, `\\w` and `\\b` stay Python's, which agree on ASCII text.
    """
    out: list[str] = []
    multiline = [False]  # per open group: whether `$` means end of line
    at_start = atom = False
    case_insensitive = non_ascii = uses_tables = False
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        at_start, was_at_start = False, i == 0 or at_start
        if char == "\\":
            escape = _escape(pattern, i, tables, in_class=False)
            if escape is None:
                return None
            piece, i, atom, code, tabled = escape
            non_ascii |= code > 0x7F
            uses_tables |= tabled
            out.append(piece)
            continue
        if char == "[":
            klass = _class(pattern, i, tables)
            if klass is None:
                return None
            piece, i, has_non_ascii, has_tables = klass
            non_ascii |= has_non_ascii
            uses_tables |= has_tables
            out.append(piece)
            atom = True
            continue
        if char == "(":
            if pattern.startswith("(?", i):
                named = _NAMED_GROUP.match(pattern, i)
                flags = _FLAG_GROUP.match(pattern, i)
                if named is not None:
                    multiline.append(multiline[-1])
                    out.append(named.group())
                    i = named.end()
                elif flags is not None and (flags.group(1) or flags.group(2) is not None or flags.group(3) == ":"):
                    on, off, end = flags.group(1), flags.group(2) or "", flags.group(3)
                    case_insensitive |= "i" in on
                    lines = ("m" in on) or (multiline[-1] and "m" not in off)
                    if end == ")":
                        if not was_at_start or off:
                            return None  # Python takes flags only at the start, for the whole pattern
                        multiline[-1] = lines
                        at_start = True
                    else:
                        multiline.append(lines)
                    out.append(flags.group())
                    i = flags.end()
                else:
                    return None  # look-around, comments, atomic groups, conditionals, `x` mode...
            else:
                multiline.append(multiline[-1])
                out.append("(")
                i += 1
            atom = False
            continue
        if char == ")":
            if len(multiline) == 1:
                return None
            multiline.pop()
            out.append(")")
            atom, i = True, i + 1
            continue
        if char in "*+?{":
            if not atom:
                return None
            end = i + 1
            if char == "{":
                counted = _COUNTED.match(pattern, i)
                if counted is None:
                    return None
                end = counted.end()
            if pattern.startswith("?", end):
                end += 1
            if end < n and pattern[end] in "*+?{":
                return None  # Python's possessive `a*+` is Rust's `(a*)+`
            out.append(pattern[i:end])
            atom, i = False, end
            continue
        if char == "$":
            out.append("$" if multiline[-1] else r"\Z")
            atom, i = False, i + 1
            continue
        non_ascii |= ord(char) > 0x7F
        out.append(char)
        atom, i = char not in "^|", i + 1
    if len(multiline) != 1:
        return None
    return "".join(out), _Traits(case_insensitive, non_ascii, uses_tables)


_Escape = tuple[str, int, bool, int, bool]


def _escape(pattern: str, i: int, tables: Mapping[str, str] | None, *, in_class: bool) -> _Escape | None:
    """One escape at `pattern[i]`.

    Returns its Python form, the next index, whether a quantifier may follow, its code
    point (0 for classes and assertions) and whether it needs Rust's class tables.
    """
    letter = pattern[i + 1 : i + 2]
    after = i + 2
    if not letter:
        return None
    if letter in "dDwW":
        body = f"\\{letter}" if tables is None else tables[letter]
        return (body if in_class or tables is None else f"[{body}]"), after, True, 0, True
    if letter in "sS":
        body = _SPACE_BODIES[letter]
        return (body if in_class else f"[{body}]"), after, True, 0, False
    if letter in "bB" and not in_class:
        if pattern.startswith("{", after):
            return None  # Rust's `\b{start}`; Python's `\b` then literal text
        if tables is None and letter == "b":
            return "\\b", after, False, 0, True
        # Python's `\B` never matches empty text; Rust's does (no word character on either side).
        word = f"[{tables['w']}]" if tables is not None else "\\w"
        if letter == "b":
            return f"(?:(?<={word})(?!{word})|(?<!{word})(?={word}))", after, False, 0, True
        return f"(?:(?<={word})(?={word})|(?<!{word})(?!{word}))", after, False, 0, True
    if letter == "A" and not in_class:
        return "\\A", after, False, 0, False
    if letter in _LETTER_ESCAPES:
        return f"\\{letter}", after, True, 0, False
    if letter in _HEX_DIGITS:
        digits = pattern[after : after + _HEX_DIGITS[letter]]
        if len(digits) != _HEX_DIGITS[letter] or not set(digits) <= _HEX:
            return None  # Rust's `\x{...}`
        return pattern[i : after + len(digits)], after + len(digits), True, int(digits, 16), False
    if letter.isascii() and not letter.isalnum() and letter not in "<>":
        return f"\\{letter}", after, True, 0, False
    return None  # back-references, \z, \Z, \p{..}, Rust's \< and \>, ...


def _class(pattern: str, i: int, tables: Mapping[str, str] | None) -> tuple[str, int, bool, bool] | None:
    """A character class at `pattern[i]`: its Python form, the next index, whether it is non-ASCII, uses tables."""
    out = ["["]
    j, n = i + 1, len(pattern)
    if pattern.startswith("^", j):
        out.append("^")
        j += 1
    first, non_ascii, uses_tables = True, False, False
    while True:
        if j >= n:
            return None
        char = pattern[j]
        if char == "]" and not first:
            break
        if char == "[" or (char in "&~-|" and pattern.startswith(char, j + 1)):
            return None  # Rust's nested classes, POSIX classes and set operations; Python's literal text
        if char == "\\":
            escape = _escape(pattern, j, tables, in_class=True)
            if escape is None:
                return None
            piece, j, _, code, tabled = escape
            non_ascii |= code > 0x7F
            uses_tables |= tabled
            out.append(piece)
        else:
            non_ascii |= ord(char) > 0x7F
            out.append(char)
            j += 1
        first = False
    out.append("]")
    return "".join(out), j + 1, non_ascii, uses_tables


def compiled(form: str | None) -> re.Pattern[str] | None:
    if form is None:
        return None
    try:
        return re.compile(form)
    except re.error:
        return None  # polars decides


_TABLES_LOCK = threading.Lock()
_TABLES: dict[str, str] = {}


def rust_classes() -> Mapping[str, str]:
    """Python class bodies of Rust's `\\d`, `\\D`, `\\w`, `\\W`, read from polars once per process (~0.1 s)."""
    if not _TABLES:
        with _TABLES_LOCK:
            if not _TABLES:
                import polars as pl

                everything = pl.Series([_every_character()])
                built: dict[str, str] = {}
                for letter in "dw":
                    runs = everything.str.extract_all(f"\\{letter}+").item().to_list()
                    ranges = [r for run in runs for r in _ranges(run)]
                    built[letter.upper()] = _class_body(_complement(ranges))
                    built[letter] = _class_body(ranges)
                # Published whole: a thread that sees a non-empty table sees all of it.
                _TABLES.update(built)
    return _TABLES


def _every_character() -> str:
    """Every Unicode scalar value, in order, as one text."""
    codes = array.array("I", range(0xD800))
    codes.extend(range(0xE000, 0x110000))
    if codes.itemsize == 4:
        return codes.tobytes().decode(f"utf-32-{sys.byteorder[0]}e")
    return "".join(map(chr, codes))


def _ranges(run: str) -> list[tuple[int, int]]:
    """The code point ranges of a run of characters in code point order."""
    low, high = ord(run[0]), ord(run[-1])
    if high - low == len(run) - 1:
        return [(low, high)]
    out: list[tuple[int, int]] = []
    for code in map(ord, run):
        if out and out[-1][1] == code - 1:
            out[-1] = (out[-1][0], code)
        else:
            out.append((code, code))
    return out


@functools.lru_cache(maxsize=4096)
def polars_matches(anchored: str, text: str) -> bool:
    """polars' own verdict, for what Python cannot decide the same way (about 0.1 ms)."""
    import polars as pl

    return bool(pl.select(pl.lit(text, dtype=pl.Utf8).str.contains(anchored)).item())


def quietly_compiled(pattern: str) -> re.Pattern[str]:
    """`re.compile` without the FutureWarnings the policy model already gave (`[[:alpha:]]`: "nested set")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(pattern)


def polars_refusal(anchored: str) -> str | None:
    """Why pandera (which compiles it with `re`) or polars (which runs it) cannot take a pattern, or None."""
    import polars as pl

    try:
        quietly_compiled(anchored)
    except re.error as exc:
        return str(exc)
    try:
        pl.Series([""], dtype=pl.Utf8).str.contains(anchored)
    except pl.exceptions.PolarsError as exc:
        return " ".join(str(exc).split("\n\n")[0].split())
    return None


# --- words ----------------------------------------------------------------------------------
