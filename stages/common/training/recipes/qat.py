"""The QAT recipe: the whole trained student, fake-quantised (tfmot), its
activation ranges calibrated, then fine-tuned at qat.lr with the distillation loss still active
(same T and teacher, and the alpha the student's fine-tune phase ended with: 1 where it fell
back to the labels). Always float32: fake quantisation is float32."""
from __future__ import annotations

from pathlib import Path

from stages.common.core import layout
from stages.common.core.hashing import file_sha256
from stages.common.core.json_files import write_json
from stages.common.core.params_schema import Params
from stages.common.data.dataset import PreparedDataset
from stages.common.data.input_pipeline import distillation_data, teacher_outputs_key
from stages.common.data.preprocessing import normalize_student
from stages.common.data.teacher_outputs import TEACHER_OUTPUTS_FILE, TeacherOutputs
from stages.common.data.tfrecord_shards import Shards
from stages.common.models.fake_quant import (
    calibrate_activation_ranges,
    quantize_student,
    save_qat_weights,
)
from stages.common.models.trained_models import DISTILLATION_ALPHA_AT_END, load_trained
from stages.common.training.distillation import Distiller
from stages.common.training.driver import (
    Plan,
    Recipe,
    StagePaths,
    final_scores,
    unlabelled_images,
)
from stages.common.training.phases import Phase

CALIBRATION_IMAGES = 256  # un-augmented training images that set the initial activation ranges


def qat_plan(params: Params, paths: StagePaths, dataset: PreparedDataset) -> Plan:
    """No weight decay: QAT is a short fine-tune at a tiny learning rate whose purpose is to let
    the quantisers settle on the weights the student ended with."""
    config, distill = params.qat, params.distillation
    batch_size = params.student.batch_size
    student, meta = load_trained(paths.student, dataset.classes)
    teacher, teacher_meta = load_trained(paths.teacher, dataset.classes)
    sizes = {"student": meta["input_size"], "teacher": teacher_meta["input_size"]}
    shards = Shards.open(paths.shards, dataset, sizes)
    # the weight the student's fine-tune phase ended with: 1 where it fell back to the labels
    alpha = meta.get(DISTILLATION_ALPHA_AT_END, distill.alpha)
    unlabelled = unlabelled_images(params, alpha, paths, dataset, sizes, "qat")
    key = teacher_outputs_key(params, paths.teacher / "weights.h5", teacher_meta["input_size"],
                              batch_size, dataset, unlabelled)
    data = distillation_data(dataset, shards, teacher, batch_size, params.seed,
                             params.augmentation, params.shards.shuffle_buffer,
                             min(distill.teacher_passes, config.epochs), key,
                             TeacherOutputs.load(paths.student / TEACHER_OUTPUTS_FILE, key,
                                                 (shards.count("val"),
                                                  shards.count("train", unlabelled),
                                                  len(dataset.classes))),
                             mixup_alpha=distill.mixup_alpha, unlabelled=unlabelled)
    before = final_scores(student, data.val_inputs, data.val_targets)
    qat_model = quantize_student(student)
    calibrate_activation_ranges(student, qat_model, (
        normalize_student(chunk) for chunk in
        shards.pixel_chunks("train", "student", chunk=batch_size, limit=CALIBRATION_IMAGES)))
    if alpha != distill.alpha:
        print(f"qat: distillation alpha {alpha:g}, as the student's fine-tune phase ended "
              f"(distillation.alpha {distill.alpha:g}; the teacher check fell back to the labels)")
    distiller = Distiller(qat_model, teacher, alpha, distill.temperature)
    phase = Phase("qat", config.epochs, config.lr, 0.0, lambda: None, distiller, None,
                  steps_per_epoch=data.distill_steps_per_epoch)

    def save(out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        save_qat_weights(qat_model, out)
        facts = {key: value for key, value in meta.items() if key != DISTILLATION_ALPHA_AT_END}
        write_json(out / "model.json", {**facts, "quantization": "qat"})

    return Plan(
        qat_model, [(phase, (data.distill_train, data.distill_val))], data.val_inputs,
        data.val_targets,
        fingerprint=(file_sha256(paths.student / "weights.h5"),
                     file_sha256(paths.teacher / "weights.h5")),
        save=save,
        metrics=lambda: {"float_student_before_qat": {k: before[k]
                                                      for k in ("val_loss", "val_f1_macro")},
                         "distillation_alpha": alpha,
                         "unlabelled_images": data.unlabelled_images},
        unlabelled=unlabelled)


QAT = Recipe("qat", layout.QAT, layout.QAT_METRICS, qat_plan, mixed_precision_allowed=False)
