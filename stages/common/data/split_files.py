"""Reading a dataset's split files (train.txt, val.txt, test.txt) line by line: names and labels
parsed under the rules of ``dataset_validation``'s docstring, each bad line a defect of its own,
named by file and line."""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from stages.common.core.errors import UserError
from stages.common.core.label_text import CONTROL_CATEGORIES, forbidden_character
from stages.common.data.dataset import Defect

MAX_LABEL_BYTES = 128  # UTF-8; labels become parts of file names (curves, reports)
_LINE_END = re.compile(rb"\r\n|\r|\n")


_SPACES = " \t"  # ignored around names and labels; any other invisible character is a defect


@dataclass(frozen=True)
class Entry:
    """One non-blank line of a split file."""

    split: str
    line: int
    name: str
    labels: tuple[str, ...]


class _Malformed(Exception):
    def __init__(self, kind: str, reason: str, name: str = ""):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.name = name  # the image name when it could be parsed


_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def _invisible_character(text: str) -> str | None:
    """The first control or line/paragraph-separator character in ``text``, as U+XXXX."""
    for character in text:
        if unicodedata.category(character) in CONTROL_CATEGORIES:
            return f"U+{ord(character):04X}"
    return None


def _check_name(name: str) -> None:
    invisible = _invisible_character(name)
    if invisible:
        raise _Malformed("malformed_line", f"control character {invisible} in the image name")
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        raise _Malformed("unsafe_name", "absolute path: names are relative to images/")
    if "\\" in name:
        raise _Malformed("unsafe_name", "backslash in name: use '/' between folders")
    parts = name.split("/")
    if ".." in parts:
        raise _Malformed("unsafe_name", "name escapes images/ ('..' is not allowed)")
    if any(part in ("", ".") for part in parts):
        raise _Malformed("malformed_line", "empty or '.' folder component in name")


def parse_line(text: str) -> tuple[str, tuple[str, ...]]:
    """Parse ``name[,label|label...]``; raises _Malformed with the reason."""
    name, comma, rest = text.partition(",")
    if comma and "," in rest:
        raise _Malformed("malformed_line", "more than one comma (labels are separated by '|')")
    name = name.strip(_SPACES)
    if not name:
        raise _Malformed("malformed_line", "no image name before the comma")
    try:
        _check_name(name)
    except _Malformed as problem:
        problem.name = name
        raise
    rest = rest.strip(_SPACES)
    labels = tuple(unicodedata.normalize("NFC", label.strip(_SPACES))
                   for label in rest.split("|")) if rest else ()
    if any(not label for label in labels):
        raise _Malformed("malformed_line", "empty label (check the '|' separators)", name)
    for label in labels:
        forbidden = forbidden_character(label)
        if forbidden:
            raise _Malformed("malformed_line", f"{forbidden} in label {label!r}", name)
        size = len(label.encode("utf-8"))
        if size > MAX_LABEL_BYTES:
            raise _Malformed("malformed_line", f"label {label[:40]!r}... is {size} bytes long "
                             f"in UTF-8; at most {MAX_LABEL_BYTES} are allowed", name)
    repeated = [label for label, n in Counter(labels).items() if n > 1]
    if repeated:
        raise _Malformed("malformed_line", f"label {repeated[0]!r} given twice", name)
    return name, labels


def split_lines(data: bytes) -> list[bytes]:
    """The lines of a split file's bytes (BOM removed): they end at \\n, \\r\\n or \\r only."""
    lines = _LINE_END.split(data)
    if lines and lines[-1] == b"":
        lines.pop()  # the end of the last line, not an extra empty line
    return lines


def parse_split_lines(lines: list[bytes | str], split: str,
                      source: str) -> tuple[list[Entry], list[Defect]]:
    """Parse a split file's lines; returns entries and line defects (one per bad line)."""
    entries, defects = [], []
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                bad = raw[error.start:error.start + 1].hex()
                defects.append(
                    Defect(
                        source,
                        number,
                        "",
                        "malformed_line",
                        f"not valid UTF-8 (byte 0x{bad} at column {error.start + 1})",
                    )
                )
                continue
        if not raw.strip(_SPACES):
            continue
        try:
            name, labels = parse_line(raw)
        except _Malformed as problem:
            subject = problem.name or raw.strip(_SPACES)
            defects.append(Defect(source, number, subject, problem.kind, problem.reason))
            continue
        entries.append(Entry(split, number, name, labels))
    return entries, defects


def read_split_file(dataset_dir: Path, split: str) -> tuple[list[Entry], list[Defect]]:
    path = dataset_dir / f"{split}.txt"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: split file not found (a dataset needs train.txt, val.txt "
                        "and test.txt beside images/)") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read: {error.strerror or error}") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    return parse_split_lines(split_lines(data), split, str(path))
