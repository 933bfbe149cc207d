"""Decision thresholds tuned on validation probabilities of the INT8 model.

- Grid: ``grid_min, grid_min + step, ..., grid_max`` (both ends included), rounded to 10 decimals
  so 0.05 + k * 0.01 lands on the intended values.
- Decision: a class is predicted when its probability is >= its threshold.
- Global threshold: the grid value with the highest validation macro-F1 (``metrics.f1_macro``:
  macro over classes with a positive in validation). Ties go to the value closest to 0.5, then
  to the smaller value: a plateau of equal scores gives the most neutral threshold.
- Per-class thresholds: for each class with validation positives, the grid value with the
  highest F1 of that class; ties go to the value closest to the global threshold, then the
  smaller. A class without validation positives has no evidence and keeps the global threshold.
- Adoption: per-class thresholds are used only if they raise validation macro-F1 by more than
  ``margin`` (0.5 points = 0.005) over the best global threshold; otherwise the global one is used
  for every class. ``check`` says how that raise is measured:
  - ``in_sample`` (the seed's): both scored on the images they were tuned on. Per-class
    thresholds can only gain there (the global one is among their choices), so with a small val
    set they are adopted nearly always, noise included.
  - ``cross_validated``: val is cut into ``folds`` folds (image i in fold i mod folds); on each,
    both kinds are tuned on the other folds and decide the held-out images; the raise is the
    macro-F1 of all held-out decisions, per-class minus global. The thresholds shipped are still
    the ones tuned on the whole of val.
"""
from __future__ import annotations

import numpy as np

from stages.common.scoring.metrics import f1_macro, f1_per_class

ADOPTION_MARGIN = 0.005  # "more than 0.5 points" of macro-F1
ADOPTION_CHECKS = ("in_sample", "cross_validated")


def threshold_grid(grid_min: float, grid_max: float, step: float) -> np.ndarray:
    count = int(np.floor((grid_max - grid_min) / step + 1e-9)) + 1
    return np.round(grid_min + step * np.arange(count), 10)


def _best(values: np.ndarray, scores: np.ndarray, prefer: float) -> int:
    """Index of the best score; ties: closest to ``prefer``, then the smaller value."""
    best = scores.max()
    candidates = np.nonzero(np.isclose(scores, best, rtol=0, atol=1e-12))[0]
    return int(min(candidates, key=lambda i: (abs(values[i] - prefer), values[i])))


def predict(probabilities: np.ndarray, thresholds) -> np.ndarray:
    return probabilities >= np.asarray(thresholds, dtype=np.float64)[None, :]


def cross_validated_gain(y_true: np.ndarray, probabilities: np.ndarray, grid: np.ndarray,
                         folds: int) -> float | None:
    """Held-out macro-F1 of per-class minus global thresholds (module docstring); None when val
    has fewer than two images to cut into folds."""
    folds = min(folds, len(y_true))
    if folds < 2:
        return None
    fold_of = np.arange(len(y_true)) % folds
    per_class = np.zeros_like(y_true, dtype=bool)
    single = np.zeros_like(y_true, dtype=bool)
    for fold in range(folds):
        held, tuned_on = fold_of == fold, fold_of != fold
        tuned = search_thresholds(y_true[tuned_on], probabilities[tuned_on], grid,
                                  [str(c) for c in range(y_true.shape[1])])
        candidates = [tuned["candidate_per_class_thresholds"][str(c)]
                      for c in range(y_true.shape[1])]
        per_class[held] = predict(probabilities[held], candidates)
        single[held] = probabilities[held] >= tuned["global_threshold"]
    return f1_macro(y_true, per_class) - f1_macro(y_true, single)


def search_thresholds(y_true: np.ndarray, probabilities: np.ndarray, grid: np.ndarray,
                      classes: list[str], margin: float = ADOPTION_MARGIN,
                      check: str = "in_sample", folds: int = 5) -> dict:
    """Global and per-class thresholds and which one to use, with the scores that decided."""
    if check not in ADOPTION_CHECKS:
        raise ValueError(f"check must be one of {ADOPTION_CHECKS}, got {check!r}")
    y_true = np.asarray(y_true).astype(bool)
    probabilities = np.asarray(probabilities)
    global_scores = np.array([f1_macro(y_true, probabilities >= t) for t in grid])
    global_index = _best(grid, global_scores, prefer=0.5)
    global_threshold = float(grid[global_index])

    per_class = np.full(len(classes), global_threshold)
    has_positive = y_true.any(axis=0)
    class_scores = np.stack([f1_per_class(y_true, probabilities >= t) for t in grid])  # G x C
    for c in np.nonzero(has_positive)[0]:
        per_class[c] = grid[_best(grid, class_scores[:, c], prefer=global_threshold)]
    per_class_score = f1_macro(y_true, predict(probabilities, per_class))
    global_score = float(global_scores[global_index])
    gain = per_class_score - global_score
    checked = {"adoption_check": check}
    if check == "cross_validated":
        gain = cross_validated_gain(y_true, probabilities, grid, folds)
        checked["folds"] = min(folds, len(y_true))
        checked["cross_validated_improvement_points"] = (None if gain is None
                                                         else round(100 * gain, 4))
    adopt = gain is not None and gain > margin
    return {
        "global_threshold": global_threshold,
        "per_class_thresholds": ({name: float(t) for name, t in zip(classes, per_class)}
                                 if adopt else None),
        "adopted": "per_class" if adopt else "global",
        "val_f1_macro_global": global_score,
        "val_f1_macro_per_class": float(per_class_score),
        "improvement_points": round(100 * (per_class_score - global_score), 4),
        "adoption_margin_points": 100 * margin,
        **checked,
        "candidate_per_class_thresholds": {name: float(t) for name, t in zip(classes, per_class)},
        "classes_without_val_positives": [name for name, p in zip(classes, has_positive) if not p],
        "f1_vs_threshold": [{"threshold": float(t), "f1_macro": float(s)}
                            for t, s in zip(grid, global_scores)],
    }


def adopted_thresholds(recommendation: dict, classes: list[str]) -> list[float]:
    per_class = recommendation.get("per_class_thresholds")
    if per_class:
        return [float(per_class[name]) for name in classes]
    return [float(recommendation["global_threshold"])] * len(classes)
