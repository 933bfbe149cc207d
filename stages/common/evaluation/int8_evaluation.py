"""Metrics of the INT8 model on TEST with the adopted thresholds, and curves."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from stages.common.core.output_folders import replaced_folder
from stages.common.quantization.int8_runtime import (
    ADOPTED_KERNEL_PATH,
    KERNEL_PATHS,
    Int8Model,
    kernel_path_agreement,
)
from stages.common.scoring.metrics import multilabel_metrics
from stages.common.scoring.threshold_search import predict

CURVE_FILE = re.compile(r"\d{3}_[A-Za-z0-9_.-]{0,60}\.csv")

CONVENTIONS = {
    "decision_rule": "a class is predicted when its probability >= its threshold",
    "zero_division": "a precision, recall or F1 whose denominator is 0 counts as 0",
    "macro_average": "over the classes with at least one positive in the split",
    "model": "the exported INT8 TFLite model run by the LiteRT interpreter on its default CPU "
             f"path ({KERNEL_PATHS[ADOPTED_KERNEL_PATH][1]})",
}

# A phone that runs other CPU kernels than the adopted path gets other int8 outputs; the
# difference is material when it would change what a user measures or sees.
MATERIAL_LABEL_SET_SHARE = 0.02  # more than 2% of test images get another label set, or
MATERIAL_F1_CHANGE = 0.01  # test macro-F1 moves by more than one point
MATERIAL_RULE = (f"material when more than {MATERIAL_LABEL_SET_SHARE:.0%} of test images get "
                 f"another label set, or test macro-F1 moves by more than {MATERIAL_F1_CHANGE}")


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
        "at_threshold_0.5": {
            **at_half,
            "no_label_rate_predicted": float(np.mean(~(probabilities >= 0.5).any(axis=1)))
            if len(y_true)
            else 0.0,
        },
        "conventions": CONVENTIONS,
    }


GALLERY_LIMIT = 24  # wrong images listed (and drawn by the report), in split order


def misclassified(y_true: np.ndarray, probabilities: np.ndarray, thresholds: list[float],
                  classes: list[str], names: list[str], limit: int = GALLERY_LIMIT) -> dict:
    """The images whose predicted label set is not the true one: for the first ``limit`` in
    split order, each false positive and false negative with its score and threshold."""
    truth = np.asarray(y_true).astype(bool)
    predicted = predict(probabilities, thresholds)
    wrong = np.nonzero((predicted != truth).any(axis=1))[0]

    def entries(row: int, mask: np.ndarray) -> list[dict]:
        return [{"class": classes[c], "score": round(float(probabilities[row, c]), 4),
                 "threshold": float(thresholds[c])} for c in np.nonzero(mask)[0]]

    return {"total": int(wrong.size), "images": [
        {"index": int(row), "image": names[row],
         "false_positives": entries(row, predicted[row] & ~truth[row]),
         "false_negatives": entries(row, truth[row] & ~predicted[row])}
        for row in wrong[:limit]]}


def kernel_paths_report(y_true: np.ndarray, adopted_raw: np.ndarray, other_raw: dict,
                        model: Int8Model, thresholds: list[float]) -> dict:
    """The other CPU kernel paths against the adopted one on test, at the adopted thresholds."""
    y_true = np.asarray(y_true).astype(bool)
    int8_thresholds = np.asarray(model.thresholds_int8(thresholds))
    adopted_f1 = multilabel_metrics(y_true, adopted_raw >= int8_thresholds)["f1_macro"]
    paths = {}
    for name, raw in other_raw.items():
        agreement = kernel_path_agreement(adopted_raw, raw, int8_thresholds)
        f1 = multilabel_metrics(y_true, raw >= int8_thresholds)["f1_macro"]
        change = f1 - adopted_f1
        paths[name] = {**agreement, "f1_macro": f1, "f1_macro_change": change,
                       "material": bool(agreement["differing_label_sets"] > MATERIAL_LABEL_SET_SHARE
                                        or abs(change) > MATERIAL_F1_CHANGE)}
    return {"adopted": ADOPTED_KERNEL_PATH, "split": "test", "thresholds": "adopted",
            "rule": MATERIAL_RULE, "paths": paths}


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
