"""Imports run one way: a module of stages/common imports from its own layer or an earlier one.

The order is ``stages.common.LAYERS``. An upward import (training importing evaluation, say) is
how cycles between domains start, and how a newcomer stops knowing where a fact lives. The walk
is tests/helpers/import_graph.py's: every import at any depth, lazy ones inside functions included.
"""
from __future__ import annotations

from pathlib import Path

from helpers.import_graph import REPO, imported_modules

from stages.common import LAYERS

COMMON = REPO / "stages" / "common"


def _layer_of_module(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["stages", "common"] and len(parts) > 2 else None


def upward_imports(paths: list[Path], layers: tuple[str, ...] = LAYERS,
                   common: Path = COMMON) -> list[str]:
    """One line per import of a later layer, or of a stage script or tool, naming both ends."""
    problems = []
    for path in paths:
        own = path.relative_to(common).parts[0]
        for module in sorted(imported_modules(path)):
            if not module.startswith("stages.") and not module.startswith("tools."):
                continue
            other = _layer_of_module(module)
            where = path.relative_to(common.parents[1])
            if other is None:
                if module not in ("stages", "stages.common"):
                    problems.append(f"{where} imports {module}: shared code may not import a "
                                    "stage script or a tool")
            elif layers.index(other) > layers.index(own):
                problems.append(f"{where} imports {module}: {own} (layer "
                                f"{layers.index(own) + 1}) may not import {other} (layer "
                                f"{layers.index(other) + 1}) in {' < '.join(layers)}")
    return problems


def _modules_in_layers() -> list[Path]:
    return sorted(p for p in COMMON.rglob("*.py") if len(p.relative_to(COMMON).parts) > 1)


def test_every_domain_has_a_place_in_the_layers():
    domains = {p.name for p in COMMON.iterdir() if (p / "__init__.py").is_file()}
    assert domains == set(LAYERS), ("stages.common.LAYERS must name every domain package once: "
                                    f"missing {sorted(domains - set(LAYERS))}, "
                                    f"unknown {sorted(set(LAYERS) - domains)}")
    assert len(LAYERS) == len(set(LAYERS))


def test_no_module_imports_a_later_layer():
    problems = upward_imports(_modules_in_layers())
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_an_upward_import_is_named(tmp_path):
    """The check itself: a lazy upward import and an import of a stage script are both caught."""
    common = tmp_path / "stages" / "common"
    (common / "training").mkdir(parents=True)
    fake = common / "training" / "_layer_probe.py"
    fake.write_text("def later():\n"
                    "    from stages.common.evaluation.int8_evaluation import evaluation_report\n"
                    "    from stages.common.scoring.metrics import f1_macro\n"
                    "    import stages.train_student\n", encoding="utf-8")
    problems = upward_imports([fake], common=common)
    assert problems == [
        "stages/common/training/_layer_probe.py imports stages.common.evaluation.int8_evaluation: "
        f"training (layer 5) may not import evaluation (layer 8) in {' < '.join(LAYERS)}",
        "stages/common/training/_layer_probe.py imports stages.train_student: shared code may "
        "not import a stage script or a tool",
    ]
