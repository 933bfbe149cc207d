"""The teacher check's second look, after the student's fine-tune phase."""
import numpy as np
import pytest

from stages.common.training.teacher_check import (
    after_finetune,
    falls_back_before_finetune,
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


def test_with_labels_as_the_rule_a_teacher_no_better_than_the_head_phase_is_dropped():
    behind = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.9, alpha=0.7,
                           if_not_better="labels")
    assert behind["teacher_is_better"] is False and falls_back_before_finetune(behind)
    warn, sentence = verdict(behind)
    assert not warn and "the fine-tune phase trains on the labels alone" in sentence
    # the same teacher under the seed's rule: trained on, with a warning naming the other rule
    warned = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.9, alpha=0.7)
    assert not falls_back_before_finetune(warned)
    warn, sentence = verdict(warned)
    assert warn and "distillation.if_teacher_not_better: labels" in sentence
    # a better teacher, or one not used at all, is never dropped before fine-tuning
    ahead = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.3, alpha=0.7,
                          if_not_better="labels")
    unused = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.9, alpha=1.0,
                           if_not_better="labels")
    assert not falls_back_before_finetune(ahead) and not falls_back_before_finetune(unused)


def test_the_finetune_verdict_says_from_which_epoch_the_labels_were_alone():
    check = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.3, alpha=0.7,
                          if_not_better="labels")
    fell_back = after_finetune(check, 0.9, labels_only_from_epoch=4)
    assert fell_back["labels_only_from_finetune_epoch"] == 4
    warn, sentence = finetune_verdict(fell_back)
    assert not warn and "trained on the labels alone from fine-tune epoch 4" in sentence
    assert after_finetune(check, 0.8)["labels_only_from_finetune_epoch"] is None


def test_the_teachers_fit_on_its_passes_is_hand_computed_and_named_when_the_student_caught_up():
    """How well the teacher fits the augmented training images it labels: far above its val
    figure, its soft targets there are nearly the labels."""
    from stages.common.training.teacher_check import teacher_fit_on_passes

    # the second pass, every logit negated: class 0 F1 0, class 1 F1 2 / (2 + 2 + 1) = 0.4
    assert teacher_fit_on_passes([TEACHER_LOGITS, -TEACHER_LOGITS], TARGETS) == pytest.approx(
        (5 / 6 + 0.4 / 2) / 2)
    assert teacher_fit_on_passes([], TARGETS) is None  # the teacher online: no passes
    # images without labels follow the training images in a pass: they have nothing to agree
    # with, and a wrong answer there changes nothing
    unlabelled_rows = np.full((3, TEACHER_LOGITS.shape[1]), 5.0, np.float32)
    assert teacher_fit_on_passes([np.concatenate([TEACHER_LOGITS, unlabelled_rows])],
                                 TARGETS) == pytest.approx(5 / 6)
    fitted = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.3, alpha=0.7,
                           fit_on_passes=0.97)
    assert fitted["teacher_train_passes_f1_macro_at_0.5"] == 0.97
    warn, sentence = finetune_verdict(after_finetune(fitted, 0.9))
    assert warn and "On its augmented training passes the teacher's macro-F1 is 0.9700" in sentence
    plain = teacher_check(TEACHER_LOGITS, TARGETS, student_head_f1_macro=0.3, alpha=0.7)
    assert plain["teacher_train_passes_f1_macro_at_0.5"] is None
    assert "training passes" not in finetune_verdict(after_finetune(plain, 0.9))[1]
