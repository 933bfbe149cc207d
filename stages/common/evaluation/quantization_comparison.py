"""Float vs PTQ vs QAT side by side: the comparison a Model Maker user makes.

Their tools quantise after training (PTQ); this pipeline fine-tunes with fake quantisation first
(QAT). Both INT8 models obey one contract (``int8_export.check_int8_model``: uint8 input at scale
1/128 and zero point 127, int8 output, ``[1, S, S, 3]``, no float tensor), are calibrated on the
same representative training images (``int8_export``), have their thresholds tuned on val by the
same search, and are scored on test with the same metrics. The float student gets the same
treatment, as the ceiling both try to keep. A paired bootstrap says which differences are noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.common.core import layout
from stages.common.data.preprocessing import normalize_student
from stages.common.evaluation.int8_evaluation import evaluation_report
from stages.common.quantization.int8_runtime import Int8Model
from stages.common.scoring.metrics import paired_bootstrap, sigmoid
from stages.common.scoring.threshold_search import adopted_thresholds, predict, search_thresholds

MODELS = ("float_student", "ptq_int8", "qat_int8")
SOURCES = {
    "float_student": "the float student (Keras, float32) before QAT",
    "ptq_int8": "the float student converted to INT8 by post-training quantisation",
    "qat_int8": f"the shipped model: QAT, then INT8 export ({layout.EXPORT_MODEL.parent})",
}


def decision_agreement(probabilities: np.ndarray, reference: np.ndarray) -> float:
    """Share of (image, class) decisions at 0.5 on which two models agree."""
    if not probabilities.size:
        return 1.0
    return float(np.mean((probabilities >= 0.5) == (reference >= 0.5)))


def tuned_and_tested(val_targets, val_probabilities, test_targets, test_probabilities, grid,
                     classes, recommendation: dict | None = None,
                     search_options: dict | None = None) -> dict:
    """Thresholds searched on val (or the given recommendation), scores on test at them.
    ``search_options``: search_thresholds' check and folds, as the thresholds stage's."""
    if recommendation is None:
        recommendation = search_thresholds(val_targets, val_probabilities, grid, classes,
                                           **(search_options or {}))
    thresholds = adopted_thresholds(recommendation, classes)
    report = evaluation_report(test_targets, test_probabilities, thresholds, classes)
    return {
        "thresholds": thresholds,  # taken out by the caller
        "test_f1_macro": report["f1_macro"],
        "test_f1_micro": report["f1_micro"],
        "test_precision_macro": report["precision_macro"],
        "test_recall_macro": report["recall_macro"],
        "test_f1_macro_at_0.5": report["at_threshold_0.5"]["f1_macro"],
        "thresholds_adopted": recommendation["adopted"],
        "global_threshold": recommendation["global_threshold"],
        "val_f1_macro_tuned": recommendation["val_f1_macro_per_class"
                                             if recommendation["adopted"] == "per_class"
                                             else "val_f1_macro_global"],
    }


@dataclass
class SplitOutputs:
    """Per split (val, test): targets, the float student's logits, both INT8 models' outputs."""

    targets: dict
    float_logits: dict
    ptq: tuple  # (Int8Model, {split: N x C int8 outputs})
    qat: tuple


def split_outputs(dataset, shards, float_student, ptq_model: Int8Model,
                  qat_model: Int8Model, splits=("val", "test")) -> SplitOutputs:
    """Every model's outputs on val and test, streamed from the shards."""
    from stages.common.quantization.int8_outputs import kernel_outputs

    classes = len(dataset.classes)
    targets, float_logits, ptq_raw, qat_raw = {}, {}, {}, {}
    for split in splits:
        targets[split] = dataset.target_matrix(split, np.int64)
        float_logits[split] = np.concatenate([np.zeros((0, classes))] + [
            float_student(normalize_student(chunk), training=False).numpy()
            for chunk in shards.pixel_chunks(split, "student", 32)])
        ptq_raw[split] = kernel_outputs([ptq_model], shards, split)[ptq_model.kernels]
        qat_raw[split] = kernel_outputs([qat_model], shards, split)[qat_model.kernels]
    return SplitOutputs(targets, float_logits, (ptq_model, ptq_raw), (qat_model, qat_raw))


def comparison(outputs: SplitOutputs, qat_recommendation: dict, grid, classes,
               qat_fidelity_test: dict, search_options: dict | None = None) -> dict:
    """The metrics file's content: each model at its own val-tuned thresholds (the QAT model at
    the shipped ones), scored on test. ``qat_fidelity_test``: export's INT8-vs-float-QAT figures."""
    float_probabilities = {split: sigmoid(logits) for split, logits in outputs.float_logits.items()}
    probabilities = {"float_student": float_probabilities}
    for name, (model, raw) in (("ptq_int8", outputs.ptq), ("qat_int8", outputs.qat)):
        probabilities[name] = {split: model.probabilities(values) for split, values in raw.items()}
    targets = outputs.targets
    rows = {}
    for name in MODELS:
        rows[name] = {
            "model": SOURCES[name],
            **tuned_and_tested(targets["val"], probabilities[name]["val"], targets["test"],
                               probabilities[name]["test"], grid, classes,
                               qat_recommendation if name == "qat_int8" else None,
                               search_options),
            "test_decisions_agree_with_float_student_at_0.5": decision_agreement(
                probabilities[name]["test"], float_probabilities["test"]),
        }
    # each INT8 model against the float model it was converted from
    rows["ptq_int8"]["test_decisions_agree_with_own_float_at_0.5"] = \
        rows["ptq_int8"]["test_decisions_agree_with_float_student_at_0.5"]
    rows["qat_int8"]["test_decisions_agree_with_own_float_at_0.5"] = \
        qat_fidelity_test["identical_decisions_at_0.5"]
    decisions = {name: predict(probabilities[name]["test"], rows[name].pop("thresholds"))
                 for name in MODELS}
    return {
        **rows,
        "qat_minus_ptq_test_f1_macro": paired_bootstrap(targets["test"], decisions["qat_int8"],
                                                        decisions["ptq_int8"]),
        "qat_minus_float_test_f1_macro": paired_bootstrap(targets["test"], decisions["qat_int8"],
                                                          decisions["float_student"]),
        "conventions": {
            "thresholds": "each model's own, searched on val with threshold_search (the QAT "
                          f"model's are {layout.THRESHOLDS}, the ones shipped)",
            "own_float": "PTQ: the float student; QAT: the float QAT model "
                         f"({layout.EXPORT_REPORT})",
            "agreement": "share of test (image, class) decisions at probability 0.5 that match",
        },
    }
