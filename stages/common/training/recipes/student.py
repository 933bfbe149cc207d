"""The student's recipe: phase "head" trains the classifier of
EfficientNet-Lite1 on the hard labels; then the teacher check; phase "finetune" unfreezes the top
student.unfreeze_fraction and trains with the distillation loss against the frozen teacher, both
seeing the same augmented image, or on the labels alone where the check says so and
distillation.if_teacher_not_better is labels."""
from __future__ import annotations

import sys
from pathlib import Path

from stages.common.core import layout
from stages.common.core.hashing import file_sha256
from stages.common.core.params_schema import Params
from stages.common.data.dataset import PreparedDataset
from stages.common.data.input_pipeline import distillation_data, teacher_outputs_key
from stages.common.data.teacher_outputs import TEACHER_OUTPUTS_FILE
from stages.common.data.tfrecord_shards import Shards
from stages.common.models.architectures import build_student, load_student_weights
from stages.common.models.trained_models import (
    DISTILLATION_ALPHA_AT_END,
    STUDENT_ARCHITECTURE,
    load_trained,
    save_trained,
)
from stages.common.training.distillation import Distiller, LabelsOnlyOnceCaughtUp
from stages.common.training.driver import (
    Plan,
    Recipe,
    StagePaths,
    TwoPhases,
    check_batch,
    head_data,
    unlabelled_images,
)
from stages.common.training.teacher_check import (
    after_finetune,
    falls_back_before_finetune,
    finetune_verdict,
    teacher_check,
    teacher_fit_on_passes,
    teacher_val_f1_macro,
    verdict,
)


def student_plan(params: Params, paths: StagePaths, dataset: PreparedDataset) -> Plan:
    config, distill = params.student, params.distillation
    check_batch(dataset, config.batch_size, "student.batch_size")
    teacher, teacher_meta = load_trained(paths.teacher, dataset.classes)
    size, classes = config.input_size, dataset.classes
    sizes = {"student": size, "teacher": teacher_meta["input_size"]}
    shards = Shards.open(paths.shards, dataset, sizes)
    unlabelled = unlabelled_images(params, distill.alpha, paths, dataset, sizes, "train_student")
    data = distillation_data(dataset, shards, teacher, config.batch_size, params.seed,
                             params.augmentation, params.shards.shuffle_buffer,
                             min(distill.teacher_passes, config.epochs_finetune),
                             teacher_outputs_key(params, paths.teacher / "weights.h5",
                                                 teacher_meta["input_size"], config.batch_size,
                                                 dataset, unlabelled),
                             mixup_alpha=distill.mixup_alpha, unlabelled=unlabelled)
    model = build_student(len(classes), size, config.dropout, pooling=config.pooling)
    if config.weights is not None:
        load_student_weights(model, config.weights, partial=config.partial_weights)
    distiller = Distiller(model, teacher, distill.alpha, distill.temperature,
                          config.label_smoothing)
    fallback = ()
    if distill.if_teacher_not_better == "labels" and distill.alpha < 1.0:
        fallback = (LabelsOnlyOnceCaughtUp(
            distiller, teacher_val_f1_macro(data.teacher_val_logits, data.val_targets)),)
    head = head_data(model, config, "student", shards, "student",
                     (data.plain_train, data.plain_val), params)
    schedule = TwoPhases.of(model, config, head, distiller, (data.distill_train, data.distill_val),
                            data.distill_steps_per_epoch, finetune_callbacks=fallback,
                            finetune_facts=distiller.facts)
    checks: dict = {}

    def check_teacher(phase_name: str, summary: dict) -> None:
        if phase_name == "head":  # before the distillation phase: warn while it can be stopped
            fit = None if data.blended else teacher_fit_on_passes(
                data.teacher_outputs.passes, dataset.target_matrix("train"))
            checks["teacher"] = teacher_check(data.teacher_val_logits, data.val_targets,
                                              summary["val_f1_macro"], distill.alpha,
                                              distill.if_teacher_not_better, fit)
            if falls_back_before_finetune(checks["teacher"]):
                distiller.use_labels_only(from_epoch=1)
            warn, sentence = verdict(checks["teacher"])
            print(sentence, file=sys.stderr if warn else sys.stdout, flush=True)
        elif phase_name == "finetune":
            distiller.take_facts(summary)  # a phase an earlier run finished: its fallback too
            checks["teacher"] = after_finetune(checks["teacher"], summary["val_f1_macro"],
                                               int(distiller.labels_only_from_epoch.numpy()))
            warn, sentence = finetune_verdict(checks["teacher"])
            print(sentence, file=sys.stderr if warn else sys.stdout, flush=True)

    def save(out: Path) -> None:
        # QAT goes on with the weight the fine-tune phase ended with (1 if it fell back)
        save_trained(model, out, STUDENT_ARCHITECTURE, classes, size, config.dropout,
                     config.pooling,
                     facts={DISTILLATION_ALPHA_AT_END: distiller.alpha_in_use()})
        data.teacher_outputs.save(out / TEACHER_OUTPUTS_FILE)  # for QAT: same teacher, same passes

    return Plan(
        model, schedule.phases, data.val_inputs, data.val_targets,
        fingerprint=(file_sha256(paths.teacher / "weights.h5"),),
        save=save,
        metrics=lambda: {"weights": config.weights or "random", "head_phase_inputs": head.inputs,
                         "trainable_backbone_layers": schedule.trainable,
                         "teacher_check": checks["teacher"],
                         "distillation": {"alpha": distill.alpha,
                                          "temperature": distill.temperature,
                                          "unlabelled_images": data.unlabelled_images}},
        unlabelled=unlabelled,
        after_phase=check_teacher)


STUDENT = Recipe("train_student", layout.STUDENT, layout.STUDENT_METRICS, student_plan)
