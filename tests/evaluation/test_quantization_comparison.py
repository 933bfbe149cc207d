"""Float student, PTQ and QAT side by side: each at its own val-tuned thresholds, scored on test."""
import numpy as np
import pytest

from stages.common.evaluation.quantization_comparison import SplitOutputs, comparison
from stages.common.quantization.int8_export import full_range_representative
from stages.common.scoring.metrics import f1_macro
from stages.common.scoring.threshold_search import threshold_grid


class _FakeInt8:
    """An INT8 model's output decoding: int8 q -> sigmoid(q / 10)."""

    def probabilities(self, raw):
        return 1 / (1 + np.exp(-np.asarray(raw, np.float64) / 10))


def test_each_model_is_tuned_on_val_and_scored_on_test():
    targets = {"val": np.array([[1, 0], [0, 1], [1, 1], [0, 0]]),
               "test": np.array([[1, 0], [0, 1], [1, 0], [0, 0]])}
    # the float student is right everywhere; PTQ gets test image 2's class 0 wrong; QAT is right
    float_logits = {split: np.where(t == 1, 3.0, -3.0) for split, t in targets.items()}
    ptq_raw = {split: np.where(t == 1, 30, -30) for split, t in targets.items()}
    ptq_raw["test"] = ptq_raw["test"].copy()
    ptq_raw["test"][2, 0] = -30
    qat_raw = {split: np.where(t == 1, 30, -30) for split, t in targets.items()}
    shipped = {"global_threshold": 0.3, "per_class_thresholds": None, "adopted": "global",
               "val_f1_macro_global": 1.0, "val_f1_macro_per_class": 1.0}
    report = comparison(SplitOutputs(targets, float_logits, (_FakeInt8(), ptq_raw),
                                     (_FakeInt8(), qat_raw)),
                        shipped, threshold_grid(0.05, 0.95, 0.01), ["a", "b"],
                        {"identical_decisions_at_0.5": 0.99})
    assert report["float_student"]["test_f1_macro"] == 1.0
    assert report["qat_int8"]["test_f1_macro"] == 1.0
    expected_ptq = f1_macro(targets["test"], ptq_raw["test"] > 0)
    assert report["ptq_int8"]["test_f1_macro"] == pytest.approx(expected_ptq) and expected_ptq < 1
    gap = report["qat_minus_ptq_test_f1_macro"]
    assert gap["difference"] == pytest.approx(1 - expected_ptq)
    low, high = gap["interval_90"]
    assert 0 <= low <= gap["difference"] <= high  # PTQ is never better on a resampled test set
    assert report["qat_minus_float_test_f1_macro"]["interval_90"] == [0.0, 0.0]
    assert report["ptq_int8"]["test_decisions_agree_with_float_student_at_0.5"] == 7 / 8
    assert report["ptq_int8"]["test_decisions_agree_with_own_float_at_0.5"] == 7 / 8
    assert report["qat_int8"]["test_decisions_agree_with_own_float_at_0.5"] == 0.99
    assert (
        report["qat_int8"]["global_threshold"] == 0.3
    )  # the shipped thresholds (re-tuning gives 0.5)


def test_the_representative_range_is_exactly_0_to_255():
    pixels = np.full((3, 8, 8, 3), 100, np.uint8)
    widened = full_range_representative(pixels)
    assert widened.min() == 0 and widened.max() == 255
    assert (widened != pixels).any(axis=-1).sum() == 2  # two pixels of the first image
    assert (pixels == 100).all()  # the caller's array is untouched


def test_bootstrap_interval_shrinks_with_more_images():
    from stages.common.scoring.metrics import paired_bootstrap

    rng = np.random.default_rng(1)

    def interval(images):
        truth = rng.uniform(size=(images, 3)) < 0.4
        first = truth ^ (rng.uniform(size=truth.shape) < 0.05)  # 5% of decisions wrong
        second = truth ^ (rng.uniform(size=truth.shape) < 0.10)  # 10% wrong
        low, high = paired_bootstrap(truth, first, second, resamples=500)["interval_90"]
        return high - low

    assert interval(2000) < interval(80) / 3
    truth = rng.uniform(size=(80, 3)) < 0.4
    same = truth ^ (rng.uniform(size=truth.shape) < 0.2)
    # paired: both models are scored on the same resampled images, so equal decisions never differ
    assert paired_bootstrap(truth, same, same.copy(), resamples=200)["interval_90"] == [0.0, 0.0]
