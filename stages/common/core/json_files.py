"""JSON files the stages write (metrics, reports, model facts): indented, ending in a newline,
their folder made first, so that ``git diff`` and ``dvc metrics diff`` read them line by line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: str | Path, data: Any, ensure_ascii: bool = True) -> None:
    """``data`` as indented JSON at ``path``; ``ensure_ascii=False`` keeps non-ASCII text (class
    names, file names) readable, in UTF-8."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=ensure_ascii) + "\n", encoding="utf-8")
