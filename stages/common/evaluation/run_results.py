"""A run's tracked results, read back: metrics/*.json, the dvclive curves and the PR and
F1-vs-threshold tables. A missing input is a user error naming the file and the stage that
writes it."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from stages.common.core import layout
from stages.common.core.errors import UserError

TRAINING_STAGES = ("train_teacher", "train_student", "qat")
WRITTEN_BY = {
    "data_report.json": "prepare",
    "teacher.json": "train_teacher",
    "student.json": "train_student",
    "qat.json": "qat",
    "export.json": "export",
    "thresholds.json": "thresholds",
    "evaluation.json": "evaluate",
    "test_errors.json": "evaluate",
    "quantization.json": "compare_quantization",
}


@dataclass
class RunFiles:
    """Where a run's tracked results live (the pipeline's defaults). ``shards`` and
    ``prepared`` give the error gallery its pictures; None draws it without them."""

    metrics: Path = layout.METRICS
    live: Path = layout.LIVE
    shards: Path | None = layout.SHARDS
    prepared: Path | None = layout.PREPARED

    def json(self, name: str) -> dict:
        path = self.metrics / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path}: missing; it is written by the stage "
                            f"{WRITTEN_BY.get(name, '?')} (dvc repro)") from None
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None



def read_table(path: Path, delimiter: str) -> dict[str, list[float]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=delimiter))
    if not rows:
        return {}
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


def training_curves(live_dir: Path) -> dict[str, dict[str, list[float]]]:
    """{"train/loss": [...], "eval/f1_macro": [...], ...} indexed by epoch (dvclive step)."""
    curves = {}
    root = live_dir / "plots" / "metrics"
    for path in sorted(root.glob("*/*.tsv")):
        table = read_table(path, "\t")
        if table:
            curves[f"{path.parent.name}/{path.stem}"] = {"step": table["step"],
                                                         "value": table[path.stem]}
    return curves


def pr_curves(curves_dir: Path, classes: list[str]) -> dict[str, dict[str, list[float]]]:
    """The evaluate stage's per-class tables; files are named NNN_<class>.csv in class order."""
    files = sorted(curves_dir.glob("*.csv"))
    if len(files) != len(classes):
        raise UserError(f"{curves_dir}: {len(files)} PR tables for {len(classes)} classes; "
                        "rerun the evaluate stage (dvc repro evaluate)")
    return {name: read_table(path, ",") for name, path in zip(classes, files)}
