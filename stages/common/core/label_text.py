"""Which characters a class label may hold: one rule for the dataset's label files, labels.txt
and inference_config.json, in Python and in the C app (stages/c_reference/config_reader.c holds
the same code points as ranges; tests/deployment/test_config_conformance.py checks they agree).

Refused, each named by its code point:
- control characters (Unicode category Cc) and line or paragraph separators (Zl, Zp): they
  break the one-label-per-line files;
- invisible format characters (Cf: zero-width spaces and joiners, the byte-order mark, bidi
  marks, ...) and the no-break space U+00A0: they make labels that look like another class
  (``cat`` and ``cat`` + U+200B) while being different strings.
"""
from __future__ import annotations

import unicodedata

CONTROL_CATEGORIES = ("Cc", "Zl", "Zp")
INVISIBLE_CATEGORIES = ("Cf",)
INVISIBLE_EXTRA = (0x00A0,)  # no-break space: category Zs, shown as a space


def forbidden_character(text: str) -> str | None:
    """The first character a label may not hold, described with its code point, or None."""
    for character in text:
        category = unicodedata.category(character)
        if category in CONTROL_CATEGORIES:
            return f"control character U+{ord(character):04X}"
        if category in INVISIBLE_CATEGORIES or ord(character) in INVISIBLE_EXTRA:
            return (f"invisible character U+{ord(character):04X} "
                    f"({unicodedata.name(character, 'unnamed')})")
    return None


def forbidden_ranges() -> list[tuple[int, int]]:
    """Every refused code point as inclusive (first, last) ranges, for the C table's test."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates never reach a decoded string
        if forbidden_character(chr(code)) is None:
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges
