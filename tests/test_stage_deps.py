"""dvc.yaml is honest: each stage's deps list exactly the project's Python files its command runs.

`dvc repro` reruns a stage only when a listed dep changes, so a module a stage imports but does
not list would leave stale models and metrics after an edit, and a listed module it does not
import reruns it for nothing. The closure is computed statically from the stage's ``cmd``:
every ``import`` and ``from ... import`` in the script and, transitively, in the project modules
it reaches, including imports inside functions (the stages import TensorFlow-heavy modules
lazily), and the package ``__init__.py`` files that Python runs on the way.
"""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


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


def _stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _python_deps(stage: dict) -> set[Path]:
    deps = set()
    for dep in stage.get("deps", []):
        if dep.endswith(".py"):
            deps.add(REPO / dep)
    return deps


def _relative(paths) -> list[str]:
    return sorted(str(p.relative_to(REPO)) for p in paths)


def stage_deps_problems(stages: dict) -> list[str]:
    problems = []
    for name, stage in stages.items():
        closure = import_closure(script_of(stage["cmd"]))
        listed = _python_deps(stage)
        missing, extra = closure - listed, listed - closure
        if missing:
            problems.append(f"stage {name}: deps lack {', '.join(_relative(missing))}")
        if extra:
            problems.append(f"stage {name}: deps list {', '.join(_relative(extra))}, "
                            "which its command never imports")
    return problems


def test_every_stage_lists_exactly_the_code_it_imports():
    problems = stage_deps_problems(_stages())
    assert not problems, "dvc.yaml deps are not the stages' import closures:\n" + "\n".join(
        problems
    )


def test_closure_follows_lazy_and_relative_imports(tmp_path):
    """The analysis itself: a dep dropped from a stage or a lazy import is noticed."""
    stages = _stages()
    assert stages, "dvc.yaml has no stages"
    for name, stage in stages.items():
        python_deps = [d for d in stage["deps"] if d.endswith(".py")]
        for dropped in python_deps:
            broken = {name: {**stage, "deps": [d for d in stage["deps"] if d != dropped]}}
            problems = stage_deps_problems(broken)
            assert problems == [f"stage {name}: deps lack {dropped}"], (name, dropped, problems)
    # `package` imports its shared module only inside main(): the closure must still hold it
    package_closure = import_closure(script_of(stages["package"]["cmd"]))
    assert REPO / "stages/common/deployment/deliverables.py" in package_closure


@pytest.mark.parametrize("command, expected", [
    ("python stages/prepare.py", "stages/prepare.py"),
    ("python -m stages.prepare --params p.yaml", "stages/prepare.py"),
])
def test_script_of_both_command_forms(command, expected):
    assert script_of(command) == REPO / expected


def documented_params(script: Path) -> list[str] | None:
    """The params a stage script's docstring says it reads ("Reads params: a, b.*, c.d." or
    "Reads no params."), a section written ``b.*`` as ``b``; None if it says neither."""
    doc = " ".join((ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or "").split())
    if "Reads no params." in doc:
        return []
    found = re.search(r"Reads params: (.+?)\.(?:\s|$)", doc)
    if found is None:
        return None
    return [item.strip().removesuffix(".*") for item in found.group(1).split(",")]


def docstring_problems(stages: dict) -> list[str]:
    problems = []
    for name, stage in stages.items():
        script = script_of(stage["cmd"])
        documented, declared = documented_params(script), stage.get("params", [])
        where = script.relative_to(REPO)
        if documented is None:
            problems.append(f"{where}: its docstring says no 'Reads params: ...' line "
                            f"(dvc.yaml: {declared or 'none'})")
        elif sorted(documented) != sorted(declared):
            problems.append(f"{where}: its docstring reads params {documented or 'none'}, "
                            f"dvc.yaml's stage {name} declares {declared or 'none'}")
    return problems


def test_every_stage_docstring_lists_the_params_dvc_yaml_gives_it():
    problems = docstring_problems(_stages())
    assert not problems, "\n".join(problems)


def test_a_docstring_missing_a_params_section_is_named():
    stages = _stages()
    declared = list(stages["train_student"]["params"])
    broken = {"train_student": {**stages["train_student"], "params": [*declared, "qat"]}}
    assert docstring_problems(broken) == [
        f"stages/train_student.py: its docstring reads params {declared}, dvc.yaml's stage "
        f"train_student declares {[*declared, 'qat']}"]
