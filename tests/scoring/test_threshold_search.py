"""Threshold search against brute force, adoption margin, int8 thresholds, evaluation metrics."""
import itertools

import numpy as np
import pytest

from stages.common.evaluation.int8_evaluation import evaluation_report, precision_recall_curve
from stages.common.quantization.int8_runtime import NEVER, int8_threshold, probability_table
from stages.common.scoring.metrics import f1_macro
from stages.common.scoring.threshold_search import (
    adopted_thresholds,
    predict,
    search_thresholds,
    threshold_grid,
)

CLASSES = ["a", "b", "c"]


def test_grid_is_the_seed_grid():
    grid = threshold_grid(0.05, 0.95, 0.01)
    assert len(grid) == 91 and grid[0] == 0.05 and grid[-1] == 0.95 and 0.5 in grid
    assert threshold_grid(0.1, 0.9, 0.2).tolist() == [0.1, 0.3, 0.5, 0.7, 0.9]


def _random_case(seed, n=40, c=3):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(size=(n, c)) < 0.4
    probabilities = np.clip(truth * 0.3 + rng.uniform(0, 0.7, size=(n, c)), 0, 1)
    return truth, probabilities


def _oracle_f1_macro(truth, decisions) -> float:
    """scikit-learn's macro-F1 over the classes with a positive (zero_division=0): an oracle
    independent of stages/common/scoring/metrics.py."""
    from sklearn.metrics import f1_score

    present = np.nonzero(np.asarray(truth).any(axis=0))[0]
    return f1_score(truth, decisions, average="macro", labels=present, zero_division=0)


@pytest.mark.parametrize("seed", range(5))
def test_search_matches_brute_force(seed):
    """Against an independent oracle: scikit-learn's F1 of the decisions p >= t, every
    threshold combination of the grid tried."""
    truth, probabilities = _random_case(seed)
    grid = threshold_grid(0.2, 0.8, 0.2)  # 4 values: 64 combinations per case
    result = search_thresholds(truth, probabilities, grid, CLASSES)
    best_global = max(_oracle_f1_macro(truth, probabilities >= t) for t in grid)
    assert result["val_f1_macro_global"] == pytest.approx(best_global)
    assert _oracle_f1_macro(truth, probabilities >= result["global_threshold"]) \
        == pytest.approx(best_global)
    best_per_class = max(_oracle_f1_macro(truth, probabilities >= np.array(combo)[None, :])
                         for combo in itertools.product(grid, repeat=3))
    assert result["val_f1_macro_per_class"] == pytest.approx(best_per_class)
    adopt = best_per_class - best_global > 0.005
    assert result["adopted"] == ("per_class" if adopt else "global")
    assert (result["per_class_thresholds"] is not None) == adopt


def test_adoption_needs_more_than_half_a_point():
    # class a separates at 0.3, class b at 0.7: per-class thresholds are clearly better
    truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=bool)
    probabilities = np.array([[0.4, 0.6], [0.4, 0.8], [0.2, 0.8], [0.2, 0.6]])
    grid = np.array([0.3, 0.5, 0.7])
    result = search_thresholds(truth, probabilities, grid, ["a", "b"])
    assert result["adopted"] == "per_class"
    assert result["per_class_thresholds"] == {"a": 0.3, "b": 0.7}
    assert adopted_thresholds(result, ["a", "b"]) == [0.3, 0.7]
    # the same gain is not enough with a margin above it
    gain = result["val_f1_macro_per_class"] - result["val_f1_macro_global"]
    refused = search_thresholds(truth, probabilities, grid, ["a", "b"], margin=gain)
    assert refused["adopted"] == "global" and refused["per_class_thresholds"] is None
    assert adopted_thresholds(refused, ["a", "b"]) == [refused["global_threshold"]] * 2


@pytest.mark.parametrize("seed", range(5))
def test_per_class_thresholds_fitted_to_noise_are_adopted_in_sample_not_cross_validated(seed):
    """Scores that know nothing of the labels: per-class thresholds fit that noise on the images
    they were tuned on, and lose on held-out ones."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(size=(60, 4)) < 0.3
    probabilities = rng.uniform(size=(60, 4))
    grid = threshold_grid(0.05, 0.95, 0.01)
    in_sample = search_thresholds(truth, probabilities, grid, list("abcd"))
    held_out = search_thresholds(truth, probabilities, grid, list("abcd"),
                                 check="cross_validated", folds=5)
    assert in_sample["adoption_check"] == "in_sample" and "folds" not in in_sample
    assert held_out["adopted"] == "global" and held_out["per_class_thresholds"] is None
    assert held_out["cross_validated_improvement_points"] < 0 and held_out["folds"] == 5
    # the same in-sample figures are reported, whichever check decided
    assert held_out["improvement_points"] == in_sample["improvement_points"]
    assert held_out["global_threshold"] == in_sample["global_threshold"]
    assert in_sample["adopted"] == "per_class"  # gains of 1.3 to 4.5 points, all noise


def test_per_class_thresholds_that_hold_out_of_sample_are_adopted_cross_validated():
    # class a separates at 0.3 and class b at 0.7 on every image: no one threshold does both
    truth = np.tile(np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=bool), (10, 1))
    probabilities = np.tile(np.array([[0.4, 0.6], [0.4, 0.8], [0.2, 0.8], [0.2, 0.6]]), (10, 1))
    result = search_thresholds(truth, probabilities, np.array([0.3, 0.5, 0.7]), ["a", "b"],
                               check="cross_validated", folds=4)
    assert result["adopted"] == "per_class"
    assert result["per_class_thresholds"] == {"a": 0.3, "b": 0.7}
    assert result["cross_validated_improvement_points"] == pytest.approx(
        result["improvement_points"])  # every fold holds the same images: no overfit to lose


def test_cross_validation_needs_two_images():
    truth, probabilities = np.array([[True, False]]), np.array([[0.9, 0.8]])
    result = search_thresholds(truth, probabilities, np.array([0.5, 0.85]), ["a", "b"],
                               check="cross_validated", folds=5)
    assert result["adopted"] == "global" and result["folds"] == 1
    assert result["cross_validated_improvement_points"] is None


def test_ties_prefer_the_threshold_closest_to_half_and_classes_without_positives():
    truth = np.array([[1, 0], [0, 0]], dtype=bool)
    probabilities = np.array([[0.9, 0.2], [0.1, 0.3]])
    result = search_thresholds(truth, probabilities, threshold_grid(0.05, 0.95, 0.05), ["a", "b"])
    # every threshold in (0.1, 0.9] separates class a perfectly: the tie goes to 0.5
    assert result["global_threshold"] == 0.5
    assert result["classes_without_val_positives"] == ["b"]
    assert result["candidate_per_class_thresholds"]["b"] == result["global_threshold"]


@pytest.mark.parametrize("scale, zero_point", [(0.05, -3), (0.1173, 10), (0.02, 0)])
def test_int8_thresholds_give_the_probability_decisions(scale, zero_point):
    table = probability_table(scale, zero_point)
    raw = np.arange(-128, 128)
    for threshold in threshold_grid(0.05, 0.95, 0.01):
        q = int8_threshold(threshold, scale, zero_point)
        assert np.array_equal(raw >= q, table >= threshold)
    assert int8_threshold(0.999999, 0.001, 0) == NEVER  # unreachable: never predicted


def test_evaluation_report_hand_computed():
    truth = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=bool)
    probabilities = np.array([[0.8, 0.1], [0.3, 0.7], [0.2, 0.2], [0.6, 0.4]])
    report = evaluation_report(truth, probabilities, [0.5, 0.35], ["a", "b"])
    # a at 0.5: predicted rows 0, 3 -> TP 1, FP 1, FN 1; b at 0.35: rows 1, 3 -> TP 2
    a, b = report["per_class"]
    assert a == {"class": "a", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2,
                 "threshold": 0.5}
    assert b == {"class": "b", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2,
                 "threshold": 0.35}
    assert report["f1_macro"] == 0.75 and report["precision_macro"] == 0.75
    assert report["f1_micro"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert report["no_label_rate_predicted"] == 0.25 and report["no_label_rate_true"] == 0.25
    assert report["at_threshold_0.5"]["f1_macro"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_precision_recall_curve():
    rows = precision_recall_curve(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.4, 0.1]))
    assert [(r["threshold"], r["precision"], r["recall"]) for r in rows] == [
        (0.9, 1.0, 0.5), (0.8, 0.5, 0.5), (0.4, 2 / 3, 1.0), (0.1, 0.5, 1.0)]


def test_a_probability_equal_to_its_threshold_is_a_positive():
    """The phone's rule is p >= t (and q >= int8 threshold): a probability exactly on the
    threshold is predicted. Hand-computed, on the boundary."""
    probabilities = np.array([[0.5, 0.3, 0.29999], [0.49999, 0.7, 0.3]])
    assert predict(probabilities, [0.5, 0.3, 0.3]).tolist() == [[True, True, False],
                                                                 [False, True, True]]
    # the search scores thresholds under the same rule: at 0.3 both b rows and the second c row
    # are positive, which is exactly the truth
    truth = np.array([[1, 1, 0], [0, 1, 1]], dtype=bool)
    result = search_thresholds(truth, probabilities, np.array([0.3, 0.5]), CLASSES)
    assert result["per_class_thresholds"] is None or result["per_class_thresholds"]["c"] == 0.3
    assert result["val_f1_macro_per_class"] == 1.0


def test_metrics_match_scikit_learn_with_a_class_without_positives():
    """Macro averages are over the classes with a positive in the truth: class d has none but
    two false positives, so averaging over every class would change each macro figure.
    scikit-learn (zero_division=0, labels = the classes with a positive) is the oracle."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    from stages.common.scoring.metrics import multilabel_metrics

    rng = np.random.default_rng(4)
    truth = rng.uniform(size=(30, 4)) < 0.4
    truth[:, 3] = False
    decisions = rng.uniform(size=(30, 4)) < 0.5
    decisions[:2, 3] = True
    present = [0, 1, 2]
    scores = multilabel_metrics(truth, decisions)
    for key, oracle in (("f1_macro", f1_score), ("precision_macro", precision_score),
                        ("recall_macro", recall_score)):
        expected = oracle(truth, decisions, average="macro", labels=present, zero_division=0)
        every_class = oracle(truth, decisions, average="macro", zero_division=0)
        assert abs(expected - every_class) > 0.01  # the convention is visible in this case
        assert scores[key] == pytest.approx(expected), key
    assert scores["f1_micro"] == pytest.approx(f1_score(truth, decisions, average="micro",
                                                        zero_division=0))
    per_class = f1_score(truth, decisions, average=None, zero_division=0)
    assert [row["f1"] for row in scores["per_class"]] == pytest.approx(per_class.tolist())
    assert [row["support"] for row in scores["per_class"]] == truth.sum(axis=0).tolist()
    assert f1_macro(truth, decisions) == pytest.approx(scores["f1_macro"])



def test_the_global_search_scores_each_grid_value_under_the_phones_rule():
    """p >= t in the search too, not only in predict: on the boundary, t = 0.5 keeps the 0.5
    positive and drops the 0.3 negative (F1 1); under p > t the search would pick 0.3."""
    truth = np.array([[1], [0]], dtype=bool)
    probabilities = np.array([[0.5], [0.3]])
    result = search_thresholds(truth, probabilities, np.array([0.3, 0.5]), ["a"])
    assert result["global_threshold"] == 0.5
    assert result["f1_vs_threshold"] == [{"threshold": 0.3, "f1_macro": pytest.approx(2 / 3)},
                                         {"threshold": 0.5, "f1_macro": 1.0}]


def test_the_search_reports_what_decided_it():
    """Every field of the recommendation, hand-computed on the adoption case above: class a
    separates at 0.3 (F1 1), class b at 0.7 (F1 1). One threshold for both: at 0.3, a 1 and b
    2/3 (all four predicted); at 0.5, a 0 and b 2/3; at 0.7, a 0 and b 1."""
    truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=bool)
    probabilities = np.array([[0.4, 0.6], [0.4, 0.8], [0.2, 0.8], [0.2, 0.6]])
    result = search_thresholds(truth, probabilities, np.array([0.3, 0.5, 0.7]), ["a", "b"],
                               margin=0.02)
    assert result == {
        "global_threshold": 0.3,
        "per_class_thresholds": {"a": 0.3, "b": 0.7},
        "adopted": "per_class",
        "val_f1_macro_global": pytest.approx((1 + 2 / 3) / 2),
        "val_f1_macro_per_class": 1.0,
        "improvement_points": round(100 * (1 - (1 + 2 / 3) / 2), 4),
        "adoption_margin_points": 2.0,
        "adoption_check": "in_sample",
        "candidate_per_class_thresholds": {"a": 0.3, "b": 0.7},
        "classes_without_val_positives": [],
        "f1_vs_threshold": [{"threshold": 0.3, "f1_macro": pytest.approx((1 + 2 / 3) / 2)},
                            {"threshold": 0.5, "f1_macro": pytest.approx(1 / 3)},
                            {"threshold": 0.7, "f1_macro": pytest.approx(0.5)}],
    }
    assert result["improvement_points"] == 16.6667


def test_a_better_score_wins_however_small_the_gain():
    """Ties are exact (to 1e-12): a threshold scoring 1e-9 more wins over one closer to 0.5."""
    from stages.common.scoring.threshold_search import _best

    values = np.array([0.5, 0.6])
    assert _best(values, np.array([0.5, 0.5 + 1e-9]), prefer=0.5) == 1
    assert _best(values, np.array([0.5, 0.5 + 1e-13]), prefer=0.5) == 0
    assert _best(values, np.array([0.7, 0.7]), prefer=0.6) == 1
    # equally close to what is preferred: the smaller value
    assert _best(np.array([0.4, 0.6]), np.array([0.7, 0.7]), prefer=0.5) == 0
