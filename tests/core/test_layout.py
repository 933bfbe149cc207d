"""The pipeline's paths are said once: stages/common/core/layout.py, which dvc.yaml must follow.

DVC needs every path a stage reads or writes spelt in dvc.yaml; the code takes them from the
layout module. A path renamed on one side only would make `dvc repro` cache one folder while
the stage writes another, so every path in dvc.yaml must be a layout path, a folder that holds
one, or a layout folder's own contents (dvclive's plots), and every layout path the pipeline
writes must be declared.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

from stages.common.core import layout

REPO = Path(__file__).resolve().parents[2]
OUTSIDE_THE_PIPELINE = {layout.BENCHMARK, layout.MEMORY, layout.CHECKPOINTS}
TRAINING_STAGES = ("train_teacher", "train_student", "qat")


def layout_paths() -> set[PurePosixPath]:
    paths = {PurePosixPath(value) for value in vars(layout).values() if isinstance(value, Path)}
    paths |= {PurePosixPath(layout.live_curves(stage)) for stage in TRAINING_STAGES}
    return paths


def dvc_paths(stages: dict) -> dict[str, set[PurePosixPath]]:
    """Each stage's non-Python deps and outs (metrics and plots too), templates left out."""
    found = {}
    for name, stage in stages.items():
        entries = [entry if isinstance(entry, str) else next(iter(entry))
                   for key in ("deps", "outs", "metrics", "plots") for entry in stage.get(key, [])]
        found[name] = {PurePosixPath(entry) for entry in entries
                       if not entry.endswith(".py") and "${" not in entry
                       and entry != "params.yaml"}
    return found


def layout_problems(stages: dict) -> list[str]:
    known = layout_paths()
    problems = []
    declared: set[PurePosixPath] = set()
    for name, paths in dvc_paths(stages).items():
        declared |= paths
        for path in sorted(paths):
            fits = any(path == known_path or path in known_path.parents
                       or known_path in path.parents for known_path in known)
            if not fits:
                problems.append(f"stage {name}: {path} is not in stages/common/core/layout.py")
    for path in sorted(known - {PurePosixPath(p) for p in OUTSIDE_THE_PIPELINE}):
        if not any(path == d or d in path.parents or path in d.parents for d in declared):
            problems.append(f"layout path {path} is in no stage of dvc.yaml")
    return problems


def test_dvc_yaml_follows_the_layout():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert layout_problems(stages) == []


def test_a_path_on_one_side_only_is_found(monkeypatch):
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    stages["export"]["outs"] = ["models/exported"]
    assert layout_problems(stages) == [
        "stage export: models/exported is not in stages/common/core/layout.py"]
    monkeypatch.setattr(layout, "CALIBRATION", Path("models/calibration"), raising=False)
    assert "layout path models/calibration is in no stage of dvc.yaml" in layout_problems(stages)
