"""The project's import graph, read statically: every ``import`` and ``from ... import`` of a
file, at any depth of its code (lazy imports inside functions included), and the closure of a
stage script over the project's files. tests/stages/test_stage_deps.py holds dvc.yaml to it,
tests/stages/test_import_layers.py the layers, scripts/sync_stage_deps.py writes deps from it."""
from __future__ import annotations

import ast
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _module_file(module: str) -> Path | None:
    """The project file that defines ``module`` (a dotted name), or None if it is not ours."""
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path) -> str:
    """The package a relative import in ``path`` starts from (for __init__.py, its own)."""
    return ".".join(path.relative_to(REPO).parts[:-1])


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every module ``path`` may import, at any depth of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path).split(".")
                anchor = package[:len(package) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            names.add(base)
            # `from package import module` imports a module, `from module import name` does not
            names.update(f"{base}.{alias.name}" for alias in node.names
                         if _module_file(f"{base}.{alias.name}") is not None)
    return names


def import_closure(script: Path) -> set[Path]:
    """The script and every project file it imports, transitively."""
    seen: set[Path] = set()
    pending = [script]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path):
            for name in _with_parents(module):
                found = _module_file(name)
                if found is not None and found not in seen:
                    pending.append(found)
    return seen


def script_of(command: str) -> Path:
    """The Python file a stage command runs: ``python path/to/x.py ...`` or ``python -m a.b``."""
    words = shlex.split(command)
    if not words or not Path(words[0]).name.startswith("python"):
        raise AssertionError(f"stage command is not a Python command: {command!r}")
    if words[1] == "-m":
        found = _module_file(words[2])
        if found is None:
            raise AssertionError(f"module {words[2]!r} of {command!r} is not a project file")
        return found
    return REPO / words[1]
