"""The teacher's recipe: phase "head" trains the classifier on a frozen
backbone (teacher.architecture); phase "finetune" unfreezes the top teacher.unfreeze_fraction of
it at a low learning rate."""
from __future__ import annotations

from stages.common.core import layout
from stages.common.core.params_schema import Params
from stages.common.data.dataset import PreparedDataset
from stages.common.data.input_pipeline import view_data
from stages.common.data.tfrecord_shards import Shards
from stages.common.models.architectures import build_teacher
from stages.common.models.trained_models import save_trained
from stages.common.training.driver import (
    Plan,
    Recipe,
    StagePaths,
    TwoPhases,
    check_batch,
    head_data,
)


def teacher_plan(params: Params, paths: StagePaths, dataset: PreparedDataset) -> Plan:
    config = params.teacher
    check_batch(dataset, config.batch_size, "teacher.batch_size")
    size, classes = config.input_size, dataset.classes
    shards = Shards.open(paths.shards, dataset, {"teacher": size})
    data = view_data(shards, dataset, "teacher", config.batch_size, params.seed,
                     params.augmentation, params.shards.shuffle_buffer)
    model = build_teacher(len(classes), size, config.dropout, config.weights,
                          config.architecture, partial_weights=config.partial_weights,
                          pooling=config.pooling)
    head = head_data(model, config, "teacher", shards, "teacher", (data.train, data.validation),
                     params)
    schedule = TwoPhases.of(model, config, head, model, (data.train, data.validation))
    return Plan(
        model, schedule.phases, data.val_inputs, data.val_targets,
        fingerprint=(),
        save=lambda out: save_trained(model, out, config.architecture, classes, size,
                                      config.dropout, config.pooling),
        metrics=lambda: {"weights": config.weights or "random", "head_phase_inputs": head.inputs,
                         "trainable_backbone_layers": schedule.trainable},
        unlabelled=None)


TEACHER = Recipe("train_teacher", layout.TEACHER, layout.TEACHER_METRICS, teacher_plan)
