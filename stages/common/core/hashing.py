"""Content hashes: the one place that decides how files and JSON-like values are fingerprinted."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    return bytes_sha256(Path(path).read_bytes())


def json_sha256(value) -> str:
    """sha256 of a canonical JSON encoding (sorted keys, UTF-8; non-JSON values as str)."""
    encoded = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()
