"""Is the teacher worth distilling from? Measured before the student's fine-tune phase.

Distillation can only pull the student toward what the teacher knows. A teacher that is no
better on val than the student after its head phase (a random teacher, or one trained too
briefly) pulls it toward a worse model, and the fine-tune epochs spent matching it are wasted or
harmful. The check compares, on val and at threshold 0.5 (logit > 0) for both:

- the teacher's macro-F1 (its tuned best over the seed's threshold grid is recorded too, to tell
  a badly calibrated teacher from one that knows nothing);
- the student's macro-F1 at the end of its head phase (hard labels only, before any distillation).

After the fine-tune phase it looks again (``after_finetune``): a teacher that the student ends
level with or above on val knew no more than the student could reach, and its soft targets held
the student near its own level (on hard data, a distilled student tracks its teacher). The head
phase alone cannot show this: any teacher beats a student whose backbone has not trained yet.

What follows a teacher that is not better is the user's choice
(``distillation.if_teacher_not_better``): ``warn`` trains on with the user's alpha and says so;
``labels`` falls back to the labels alone (alpha 1): for the whole fine-tune phase when the
teacher is no better than the head-phase student, and otherwise for the epochs left once the
student's val macro-F1 reaches the teacher's (``distillation.LabelsOnlyOnceCaughtUp``). The
comparison with what the student reaches is the one that matters on hard data: there a
distilled student tracks its teacher, so a teacher the student catches up with holds it back.

With fixed teacher passes the check also gives the teacher's macro-F1 on those augmented
training images against their labels (``teacher_fit_on_passes``). Far above its val figure, it
says the teacher has fitted its training set: its soft targets there are nearly the labels, and
distilling hands on little beyond them (the hard benchmark: 0.96 on the passes, 0.86 on val).
"""
from __future__ import annotations

import numpy as np

from stages.common.scoring.metrics import f1_macro, sigmoid
from stages.common.scoring.threshold_search import search_thresholds, threshold_grid

# The seed's grid, fixed here: reading threshold_search from params.yaml would make a threshold
# experiment retrain the student.
GRID = threshold_grid(0.05, 0.95, 0.01)


def teacher_val_f1_macro(teacher_val_logits: np.ndarray, val_targets: np.ndarray) -> float:
    """The figure every comparison here uses: the teacher's val macro-F1 at 0.5 (logit > 0)."""
    return f1_macro(val_targets, teacher_val_logits > 0)


def teacher_fit_on_passes(pass_logits: list, train_targets: np.ndarray) -> float | None:
    """The teacher's mean macro-F1 at 0.5 over its fixed augmented passes (logits by index),
    against the training labels; None without passes. Blended passes (mixup) have no labels to
    agree with: leave them out. Images without labels, after the training images in the passes,
    have none either: only the first ``len(train_targets)`` rows count."""
    if not pass_logits:
        return None
    labelled = len(train_targets)
    return float(np.mean([f1_macro(train_targets, logits[:labelled] > 0)
                          for logits in pass_logits]))


def teacher_check(teacher_val_logits: np.ndarray, val_targets: np.ndarray,
                  student_head_f1_macro: float, alpha: float,
                  if_not_better: str = "warn", fit_on_passes: float | None = None) -> dict:
    """The teacher's val figures, the student's head-phase figure, and the verdict.
    ``fit_on_passes``: teacher_fit_on_passes, recorded when there is one."""
    classes = [str(i) for i in range(val_targets.shape[1])]
    tuned = search_thresholds(val_targets, sigmoid(teacher_val_logits), GRID, classes)
    at_half = teacher_val_f1_macro(teacher_val_logits, val_targets)
    return {
        "teacher_val_f1_macro_at_0.5": at_half,
        "teacher_val_f1_macro_tuned": tuned["val_f1_macro_global"],
        "teacher_tuned_threshold": tuned["global_threshold"],
        "student_head_val_f1_macro_at_0.5": float(student_head_f1_macro),
        "teacher_is_better": bool(at_half > student_head_f1_macro),
        "distillation_alpha": float(alpha),
        "if_teacher_not_better": if_not_better,
        "teacher_train_passes_f1_macro_at_0.5": fit_on_passes,
    }


def falls_back_before_finetune(check: dict) -> bool:
    """Whether the whole fine-tune phase trains on the labels alone."""
    return (check["distillation_alpha"] < 1.0 and not check["teacher_is_better"]
            and check["if_teacher_not_better"] == "labels")


def verdict(check: dict) -> tuple[bool, str]:
    """(whether to warn, the sentence to print)."""
    figures = (f"teacher val macro-F1 {check['teacher_val_f1_macro_at_0.5']:.4f} at 0.5 "
               f"({check['teacher_val_f1_macro_tuned']:.4f} at its best threshold "
               f"{check['teacher_tuned_threshold']:.2f}), student after its head phase "
               f"{check['student_head_val_f1_macro_at_0.5']:.4f}")
    if check["distillation_alpha"] >= 1.0:
        return (
            False,
            f"teacher check: {figures}; distillation.alpha is 1.0, the teacher is not used",
        )
    if check["teacher_is_better"]:
        return False, f"teacher check: {figures}: the teacher knows more, distillation can help"
    if falls_back_before_finetune(check):
        return False, (f"teacher check: {figures}. The teacher is not better than the student it "
                       "should teach: the fine-tune phase trains on the labels alone (alpha 1; "
                       "distillation.if_teacher_not_better: labels)")
    return True, (f"WARNING: teacher check: {figures}. The teacher is not better than the student "
                  f"it should teach: with distillation.alpha {check['distillation_alpha']:g} the "
                  "fine-tune phase pulls the student toward a worse model. Fix: set "
                  "distillation.alpha: 1.0 (hard labels only, the teacher is ignored), or train a "
                  "better teacher (teacher.weights: imagenet, teacher.architecture: "
                  "efficientnet_lite2 offline, more teacher epochs), or let the pipeline fall "
                  "back to the labels (distillation.if_teacher_not_better: labels). Training goes "
                  "on with your params.")


def after_finetune(check: dict, student_f1_macro: float, labels_only_from_epoch: int = 0) -> dict:
    """The check again, against the student's val macro-F1 at the end of its fine-tune phase.
    ``labels_only_from_epoch``: the fine-tune epoch (1-based) from which the student trained on
    the labels alone, 0 if it never did."""
    return {**check, "student_finetuned_val_f1_macro_at_0.5": float(student_f1_macro),
            "teacher_ahead_of_finetuned_student": bool(
                check["teacher_val_f1_macro_at_0.5"] > student_f1_macro),
            "labels_only_from_finetune_epoch": int(labels_only_from_epoch) or None}


def finetune_verdict(check: dict) -> tuple[bool, str]:
    """(whether to warn, the sentence to print) once the fine-tune phase has run."""
    figures = (f"teacher val macro-F1 {check['teacher_val_f1_macro_at_0.5']:.4f} at 0.5, student "
               f"after fine-tuning {check['student_finetuned_val_f1_macro_at_0.5']:.4f}")
    since = check.get("labels_only_from_finetune_epoch")
    if check["distillation_alpha"] < 1.0 and since:
        return False, (f"teacher check after fine-tuning: {figures}; trained on the labels alone "
                       f"from fine-tune epoch {since} (distillation.if_teacher_not_better: labels)")
    if check["distillation_alpha"] >= 1.0 or check["teacher_ahead_of_finetuned_student"]:
        return False, f"teacher check after fine-tuning: {figures}"
    fit = check.get("teacher_train_passes_f1_macro_at_0.5")
    fitted = ("" if fit is None else
              f" On its augmented training passes the teacher's macro-F1 is {fit:.4f} against "
              "the labels: where that is far above its val figure, its soft targets there are "
              "nearly the labels.")
    return True, (f"WARNING: teacher check after fine-tuning: {figures}. The student ended level "
                  "with or above its teacher: the teacher knew no more than the student reached, "
                  f"and with distillation.alpha {check['distillation_alpha']:g} its soft targets "
                  f"may have held the student back.{fitted} Compare with the labels alone (dvc "
                  "exp run -S distillation.alpha=1.0), let the pipeline drop the teacher once "
                  "the student reaches it (distillation.if_teacher_not_better: labels), or train "
                  "a stronger teacher (more epochs, teacher.unfreeze_fraction 1.0, a larger "
                  "teacher.input_size).")
