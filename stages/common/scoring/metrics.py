"""Multi-label metrics in numpy, one definition for training callbacks, thresholds and evaluation.

Conventions (stated once, used everywhere):
- per class: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2TP / (2TP + FP + FN);
  a ratio whose denominator is 0 counts as 0 (zero_division = 0).
- macro averages are taken over the classes that have at least one positive in the ground truth
  of the split evaluated (a class without positives has no recall to measure); micro F1 pools
  the counts of all classes.
"""
from __future__ import annotations

import numpy as np


def _ratio(numerator, denominator):
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray):
    """Per-class TP, FP, FN for N x C binary arrays."""
    truth = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_pred).astype(bool)
    if truth.shape != pred.shape or truth.ndim != 2:
        raise ValueError(f"expected two N x C arrays, got {truth.shape} and {pred.shape}")
    tp = np.sum(truth & pred, axis=0)
    fp = np.sum(~truth & pred, axis=0)
    fn = np.sum(truth & ~pred, axis=0)
    return tp, fp, fn


def f1_per_class(y_true, y_pred) -> np.ndarray:
    tp, fp, fn = confusion_counts(y_true, y_pred)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def f1_macro(y_true, y_pred) -> float:
    present = np.asarray(y_true).astype(bool).any(axis=0)
    if not present.any():
        return 0.0
    return float(f1_per_class(y_true, y_pred)[present].mean())


def multilabel_metrics(y_true, y_pred) -> dict:
    """Macro/micro scores and per-class precision, recall, F1 and support."""
    tp, fp, fn = confusion_counts(y_true, y_pred)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    support = tp + fn
    present = support > 0

    def macro(values):
        return float(values[present].mean()) if present.any() else 0.0

    return {
        "precision_macro": macro(precision),
        "recall_macro": macro(recall),
        "f1_macro": macro(f1),
        "f1_micro": float(_ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum())),
        "per_class": [
            {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for p, r, f, s in zip(precision, recall, f1, support)
        ],
    }


def trivial_baselines(y_true) -> dict:
    """Macro F1 of predicting nothing and of predicting every class: what learning must beat."""
    truth = np.asarray(y_true)
    return {
        "f1_macro_all_negative": f1_macro(truth, np.zeros_like(truth)),
        "f1_macro_all_positive": f1_macro(truth, np.ones_like(truth)),
    }


def sigmoid(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-logits))


BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def paired_bootstrap(targets: np.ndarray, first: np.ndarray, second: np.ndarray,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """Test macro-F1 of ``first`` minus ``second`` (N x C decisions on the same images), with the
    5th and 95th percentiles of that difference over test sets resampled with replacement: on a
    small test set, a difference inside that interval is noise."""
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for index in range(resamples):
        chosen = rng.integers(0, len(targets), len(targets))
        differences[index] = (f1_macro(targets[chosen], first[chosen])
                              - f1_macro(targets[chosen], second[chosen]))
    low, high = np.percentile(differences, [5, 95])
    return {"difference": f1_macro(targets, first) - f1_macro(targets, second),
            "interval_90": [float(low), float(high)], "resamples": resamples,
            "images": int(len(targets))}
