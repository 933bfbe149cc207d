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
from pathlib import Path

import pytest
import yaml
from helpers.import_graph import REPO, import_closure, script_of


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
