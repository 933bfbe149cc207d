"""The metrics' conventions on the edge cases a real split reaches: classes never predicted,
classes with one positive, splits with no positive at all. scikit-learn (zero_division=0) and
hand counts are the oracles; stages/common/scoring/metrics.py is never its own."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from stages.common.scoring.metrics import (
    confusion_counts,
    f1_macro,
    f1_per_class,
    multilabel_metrics,
    sigmoid,
    trivial_baselines,
)

# class 0: one positive, found, no false positive (every ratio exactly 1 = 1 / 1)
# class 1: two positives, never predicted (precision 0 / 0 counts as 0)
# class 2: one positive missed, one false positive
TRUTH = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0]], dtype=bool)
DECISIONS = np.array([[1, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=bool)


def test_per_class_ratios_on_one_positive_and_a_class_never_predicted():
    scores = multilabel_metrics(TRUTH, DECISIONS)
    rows = [(row["precision"], row["recall"], row["f1"], row["support"])
            for row in scores["per_class"]]
    assert rows == [(1.0, 1.0, 1.0, 1), (0.0, 0.0, 0.0, 2), (0.0, 0.0, 0.0, 1)]
    assert [row["precision"] for row in scores["per_class"]] == precision_score(
        TRUTH, DECISIONS, average=None, zero_division=0).tolist()
    assert [row["recall"] for row in scores["per_class"]] == recall_score(
        TRUTH, DECISIONS, average=None, zero_division=0).tolist()
    assert f1_per_class(TRUTH, DECISIONS).tolist() == [1.0, 0.0, 0.0]
    # every class has a positive here, so each macro figure is the mean over all three
    assert scores["precision_macro"] == pytest.approx(1 / 3)
    assert scores["recall_macro"] == pytest.approx(1 / 3)
    assert scores["f1_macro"] == pytest.approx(1 / 3)
    assert f1_macro(TRUTH, DECISIONS) == pytest.approx(1 / 3)
    # micro: TP 1, FP 1, FN 3
    assert scores["f1_micro"] == pytest.approx(2 / (2 + 1 + 3))


def test_a_split_without_any_positive_scores_zero_not_nan():
    truth = np.zeros((3, 2), dtype=bool)
    for decisions in (np.zeros((3, 2), dtype=bool), np.ones((3, 2), dtype=bool)):
        scores = multilabel_metrics(truth, decisions)
        assert (scores["precision_macro"], scores["recall_macro"], scores["f1_macro"],
                scores["f1_micro"]) == (0.0, 0.0, 0.0, 0.0)
        assert f1_macro(truth, decisions) == 0.0


def test_confusion_counts_by_hand_and_mismatched_shapes_refused():
    tp, fp, fn = confusion_counts(TRUTH, DECISIONS)
    assert (tp.tolist(), fp.tolist(), fn.tolist()) == ([1, 0, 0], [0, 0, 1], [0, 2, 1])
    with pytest.raises(ValueError, match=r"expected two N x C arrays, got \(3, 3\) and \(3, 2\)"):
        confusion_counts(TRUTH, DECISIONS[:, :2])
    with pytest.raises(ValueError, match=r"got \(3,\) and \(3,\)"):
        confusion_counts(TRUTH[:, 0], DECISIONS[:, 0])


def test_trivial_baselines_by_hand():
    # all-positive: class 0 F1 = 2/(2+2) (1 TP, 2 FP), class 1 = 4/(4+1), class 2 = 2/(2+2)
    baselines = trivial_baselines(TRUTH.astype(np.float32))
    assert baselines["f1_macro_all_negative"] == 0.0
    assert baselines["f1_macro_all_positive"] == pytest.approx((0.5 + 0.8 + 0.5) / 3)
    assert baselines["f1_macro_all_positive"] == pytest.approx(
        f1_score(TRUTH, np.ones_like(TRUTH), average="macro", zero_division=0))


def test_sigmoid_values():
    assert sigmoid([0, 2, -2]).tolist() == pytest.approx([0.5, 1 / (1 + np.exp(-2)),
                                                          1 / (1 + np.exp(2))], abs=1e-15)
    assert sigmoid(np.array([1], dtype=np.int8)).dtype == np.float64


def test_metrics_hand_computed():
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    pred = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 0]])
    # class 0: TP 1, FN 1 -> F1 2/3; class 1: TP 2, FP 1 -> F1 4/5; class 2: no positives
    assert f1_macro(truth, pred) == pytest.approx((2 / 3 + 4 / 5) / 2)
    scores = multilabel_metrics(truth, pred)
    assert scores["f1_micro"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert scores["precision_macro"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert scores["per_class"][2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    baselines = trivial_baselines(truth)
    assert baselines["f1_macro_all_negative"] == 0.0
    assert baselines["f1_macro_all_positive"] == pytest.approx((2 * 2 / 6 + 2 * 2 / 6) / 2)
