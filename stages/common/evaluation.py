"""Seed section 7: metrics of the INT8 model on TEST with the adopted thresholds, and curves."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from .metrics import multilabel_metrics
from .output_folders import replaced_folder
from .thresholds import predict

CURVE_FILE = re.compile(r"\d{3}_[A-Za-z0-9_.-]{0,60}\.csv")

CONVENTIONS = {
    "decision_rule": "a class is predicted when its probability >= its threshold",
    "zero_division": "a precision, recall or F1 whose denominator is 0 counts as 0",
    "macro_average": "over the classes with at least one positive in the split",
    "model": "the exported INT8 TFLite model run by the LiteRT interpreter",
}


def evaluation_report(y_true: np.ndarray, probabilities: np.ndarray, thresholds: list[float],
                      classes: list[str], split: str = "test") -> dict:
    """The seed's metrics.json: macro and micro scores, per class, no-label rates, and at 0.5."""
    y_true = np.asarray(y_true).astype(bool)
    predicted = predict(probabilities, thresholds)
    scores = multilabel_metrics(y_true, predicted)
    per_class = [{"class": name, **row, "threshold": float(t)}
                 for name, row, t in zip(classes, scores.pop("per_class"), thresholds)]
    at_half = multilabel_metrics(y_true, probabilities >= 0.5)
    at_half.pop("per_class")
    return {
        "split": split,
        "images": int(len(y_true)),
        **scores,
        "no_label_rate_predicted": float(np.mean(~predicted.any(axis=1))) if len(y_true) else 0.0,
        "no_label_rate_true": float(np.mean(~y_true.any(axis=1))) if len(y_true) else 0.0,
        "per_class": per_class,
        "at_threshold_0.5": {**at_half, "no_label_rate_predicted":
                             float(np.mean(~(probabilities >= 0.5).any(axis=1))) if len(y_true) else 0.0},
        "conventions": CONVENTIONS,
    }


def precision_recall_curve(y_true: np.ndarray, scores: np.ndarray) -> list[dict]:
    """One class: precision and recall at every distinct score used as threshold (descending)."""
    truth = np.asarray(y_true).astype(bool)
    positives = int(truth.sum())
    rows = []
    for threshold in np.unique(scores)[::-1]:
        predicted = scores >= threshold
        tp = int(np.sum(predicted & truth))
        count = int(predicted.sum())
        rows.append({"threshold": float(threshold),
                     "precision": tp / count if count else 0.0,
                     "recall": tp / positives if positives else 0.0})
    return rows


def curve_file_name(index: int, name: str) -> str:
    """``NNN_label.csv``: the label's safe characters, at most 60, so any label makes a valid
    file name (the index keeps the names distinct and in output order)."""
    return f"{index:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:60]}.csv"


def _is_curves_folder(folder: Path) -> bool:
    return all(path.is_file() and CURVE_FILE.fullmatch(path.name) for path in folder.iterdir())


def write_precision_recall_curves(folder: str | Path, classes: list[str], y_true: np.ndarray,
                                  probabilities: np.ndarray) -> None:
    """One CSV per class (threshold, precision, recall) for ``dvc plots``; the folder is
    replaced whole, so a class gone from the dataset leaves no stale curve."""
    with replaced_folder(folder, _is_curves_folder, "precision-recall curves of evaluate",
                         mark=False) as staging:
        for index, name in enumerate(classes):
            with open(staging / curve_file_name(index, name), "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["threshold", "precision", "recall"])
                writer.writeheader()
                writer.writerows(precision_recall_curve(y_true[:, index], probabilities[:, index]))
