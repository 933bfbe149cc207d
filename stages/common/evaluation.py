"""Seed section 7: metrics of the INT8 model on TEST with the adopted thresholds, and curves."""
from __future__ import annotations

import numpy as np

from .metrics import multilabel_metrics
from .thresholds import predict

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
