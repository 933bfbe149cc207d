"""The teacher check's second look, after the student's fine-tune phase."""
import numpy as np
import pytest

from stages.common.training.teacher_check import (
    after_finetune,
    finetune_verdict,
    teacher_check,
    verdict,
)

TARGETS = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
# right on 3 of 4 images: class 0 F1 1.0, class 1 F1 2/3 -> macro-F1 5/6 at 0.5
TEACHER_LOGITS = np.array([[3.0, -3.0], [-3.0, 3.0], [3.0, -3.0], [-3.0, -3.0]], np.float32)


def test_a_teacher_ahead_of_the_head_phase_but_not_of_the_finetuned_student_is_flagged():
    check = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.3, alpha=0.7)
    assert check["teacher_val_f1_macro_at_0.5"] == pytest.approx(5 / 6)
    assert check["teacher_is_better"] and not verdict(check)[0]  # the first look is content
    caught_up = after_finetune(check, 0.9)
    assert caught_up["student_finetuned_val_f1_macro_at_0.5"] == 0.9
    assert caught_up["teacher_ahead_of_finetuned_student"] is False
    warn, sentence = finetune_verdict(caught_up)
    assert warn and sentence.startswith("WARNING") and "distillation.alpha=1.0" in sentence
    level = after_finetune(
        check, check["teacher_val_f1_macro_at_0.5"]
    )  # level with the teacher counts as caught up
    assert finetune_verdict(level)[0]


def test_a_teacher_still_ahead_or_unused_is_not_flagged():
    check = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.3, alpha=0.7)
    behind = after_finetune(check, 0.8)
    assert behind["teacher_ahead_of_finetuned_student"] is True
    assert finetune_verdict(behind) == (False, "teacher check after fine-tuning: teacher val "
                                        "macro-F1 0.8333 at 0.5, student after fine-tuning 0.8000")
    unused = after_finetune({**check, "distillation_alpha": 1.0}, 0.9)
    assert not finetune_verdict(unused)[0]
