"""JSON in the subset the output-folder rules allow (docs/output_folder_rules.md), read the way a
phone's reader must: no member name twice in one object, no NaN or Infinity, no number longer than
MAX_NUMBER_CHARS or out of range, no nesting deeper than MAX_JSON_DEPTH, no NUL or lone surrogate
in a string. Anything else is a UserError naming the file, and its line where it has one."""
from __future__ import annotations

import json
import math
import re

from stages.common.core.errors import UserError

MAX_JSON_DEPTH = 64  # nested arrays and objects
MAX_NUMBER_CHARS = 63  # the longest number a reader must take


class _Refused(Exception):
    """A JSON text outside the subset the rules allow."""


def _no_duplicates(pairs: list) -> dict:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise _Refused(f"member name {twice!r} appears twice in one object")
    return dict(pairs)


def _no_constant(name: str):
    raise _Refused(f"{name} is not a JSON number")


def _number(kind):
    def parse(text: str):
        if len(text) > MAX_NUMBER_CHARS:
            raise _Refused("a number is too long")
        value = kind(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise _Refused("a number is out of range")
        return value
    return parse


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _too_deep(text: str) -> int | None:
    """The line where arrays and objects nest deeper than MAX_JSON_DEPTH, or None."""
    depth = 0
    bare = _STRING.sub(lambda m: "\n" * m.group().count("\n"), text)
    for match in re.finditer(r"[\[\]{}]", bare):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return bare[:match.start()].count("\n") + 1
    return None


def _bad_string(value) -> str | None:
    """Why a string somewhere in ``value`` (member names too) breaks the rules, or None."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\0" in item:
                return "\\u0000 inside a string"
            if any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                return "a lone UTF-16 surrogate in a \\u escape"
    return None


def strict_json(text: str, source: str):
    """The value of a JSON text in the rules' subset; UserError naming ``source`` (and the line,
    where the problem has one) otherwise."""
    line = _too_deep(text)
    if line is not None:
        raise UserError(f"{source}:{line}: invalid JSON: nested more than {MAX_JSON_DEPTH} "
                        "levels deep")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                           parse_float=_number(float), parse_int=_number(int))
    except json.JSONDecodeError as error:
        raise UserError(f"{source}:{error.lineno}: invalid JSON: {error.msg}") from None
    except (_Refused, ValueError, RecursionError) as error:
        raise UserError(f"{source}: invalid JSON: {error}") from None
    problem = _bad_string(value)
    if problem:
        raise UserError(f"{source}: invalid JSON: {problem}")
    return value
