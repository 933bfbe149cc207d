"""One driver for the three training stages, and the recipes that say how they differ.

The driver (``train``): on the devices of ``train.strategy``, seed, read the prepared data, ask
the recipe for its plan, run the plan's phases with one dvclive run and resumable checkpoints,
save the model, and write the metrics. A recipe (``Recipe``) says what differs: the model, the
views it sees, the loss, the phases and what is saved. ``TEACHER``, ``STUDENT`` and ``QAT`` are
the seed's sections 2, 3 and 4:

- teacher: phase "head" trains the classifier on a frozen backbone; phase "finetune" unfreezes
  the top ``teacher.unfreeze_fraction`` of it at a low learning rate;
- student: phase "head" trains the classifier of EfficientNet-Lite1 on the hard labels; then
  the teacher check; phase "finetune" unfreezes the top ``student.unfreeze_fraction`` and trains
  with the distillation loss against the frozen teacher, both seeing the same augmented image;
- QAT: the whole student, fake-quantised, fine-tuned with the distillation loss still active.

BatchNormalization layers stay frozen (inference mode) when the backbone starts from pretrained
weights, to keep their statistics; a randomly initialised backbone has none worth keeping, so
its unfrozen BatchNormalization layers train.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

import tensorflow as tf

from stages.common.core import layout
from stages.common.core.errors import UserError
from stages.common.core.hashing import file_sha256, json_sha256
from stages.common.data.dataset import PreparedDataset, load_prepared
from stages.common.data.input_pipeline import distillation_data, predict_logits, view_data
from stages.common.data.preprocessing import normalize_student
from stages.common.data.tfrecord_shards import Shards
from stages.common.evaluation.metrics import f1_macro, trivial_baselines
from stages.common.models.architectures import (STUDENT_ARCHITECTURE, build_student,
                                                build_teacher, load_student_weights, load_trained,
                                                save_trained, set_trainable)
from stages.common.training.devices import (LOST_WORKER_ERRORS, distribution_strategy, is_chief,
                                            lost_worker_message, seed_everything, set_precision)
from stages.common.training.distillation import Distiller, hard_loss
from stages.common.training.phases import Phase, ResumeState, check_same_progress, run_phase
from stages.common.training.teacher_check import teacher_check, verdict

keras = tf.keras


@dataclass
class StagePaths:
    """Where one training stage reads and writes (the pipeline's layout unless told)."""

    out: Path
    metrics: Path
    live: Path | None  # dvclive curves; None: none written
    checkpoints: Path
    shards: str | Path = layout.SHARDS  # or a URL every worker of a cluster reads (file://, gs://)
    prepared: Path = layout.PREPARED
    teacher: Path = layout.TEACHER  # read by the student and QAT stages
    student: Path = layout.STUDENT  # read by the QAT stage
    worker_scratch: Path | None = None  # set on a multi-worker cluster's non-chief workers


@dataclass
class Plan:
    """What a recipe hands the driver: the model and its phases, each with its (train,
    validation) data; how progress is fingerprinted; how the model is saved; and the stage's
    own metrics, read once the phases have run."""

    model: keras.Model  # what is evaluated and saved (not a Distiller around it)
    phases: list[tuple[Phase, tuple]]
    val_inputs: tf.data.Dataset
    val_targets: np.ndarray
    fingerprint: tuple  # with the stage name and seed: the resume checkpoints' key
    save: Callable[[Path], None]
    metrics: Callable[[], dict]
    after_phase: Callable[[str, dict], None] | None = None


@dataclass(frozen=True)
class Recipe:
    stage: str
    out: Path
    metrics: Path
    plan: Callable[[dict, StagePaths, PreparedDataset], Plan]
    mixed_precision_allowed: bool = True

    def paths(self, shards: str | Path = layout.SHARDS) -> StagePaths:
        """The pipeline's layout for this stage."""
        return StagePaths(self.out, self.metrics, layout.live_curves(self.stage),
                          layout.checkpoints(self.stage), shards)


def train(recipe: Recipe, params: dict, paths: StagePaths) -> dict:
    """Run a training stage end to end; returns the metrics it wrote."""
    return _on_devices(lambda on_device_paths: _train(recipe, params, on_device_paths), params,
                       paths, recipe.stage, recipe.mixed_precision_allowed)


def _train(recipe: Recipe, params: dict, paths: StagePaths) -> dict:
    started = time.monotonic()
    seed_everything(params["seed"])
    dataset = load_prepared(paths.prepared)
    plan = recipe.plan(params, paths, dataset)
    state = ResumeState(paths.checkpoints, json_sha256(
        (recipe.stage, params["seed"], *plan.fingerprint, dataset.fingerprint())),
        paths.worker_scratch)
    summaries = _run_schedule(plan, state, paths.live, recipe.stage)
    plan.save(paths.out)
    metrics = {**_final_scores(plan.model, plan.val_inputs, plan.val_targets),
               "phases": summaries, **plan.metrics(),
               "wall_time_s": round(time.monotonic() - started, 1)}
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    state.clear()
    return metrics


def _on_devices(train_function: Callable[[StagePaths], dict], params: dict, paths: StagePaths,
                stage: str, mixed_precision_allowed: bool) -> dict:
    """Run a stage's training under ``train.strategy`` and ``train.mixed_precision``: models,
    optimizers and checkpoints are created inside the strategy's scope.

    Under multi_worker every worker runs the whole stage (saving a model reads synchronised
    variables, a collective op), but only the chief writes the model, metrics, curves and
    checkpoints; the others write theirs to a temporary folder removed at the end."""
    mixed = params["train"]["mixed_precision"]
    if mixed and not mixed_precision_allowed:
        print("note: QAT runs in float32 (its fake quantisation is float32); "
              "train.mixed_precision applies to the teacher and the student")
    scratch = None
    try:
        # first: a multi-worker strategy must exist before anything starts TensorFlow's runtime
        strategy = distribution_strategy(params["train"]["strategy"])
        set_precision(mixed and mixed_precision_allowed)
        if strategy.num_replicas_in_sync > 1:
            print(f"training on {strategy.num_replicas_in_sync} devices "
                  f"({type(strategy).__name__}); batch sizes are global", flush=True)
        if not is_chief(strategy):
            scratch = Path(tempfile.mkdtemp(prefix=f"worker_{stage}_"))
            paths = replace(paths, out=scratch / "model", metrics=scratch / "metrics.json",
                            live=None, worker_scratch=scratch / "checkpoints")
            print(f"{stage}: not the chief: this worker's outputs go to {scratch}, removed at "
                  "the end", flush=True)
        with strategy.scope():
            return train_function(paths)
    except LOST_WORKER_ERRORS as error:
        if params["train"]["strategy"] != "multi_worker":
            raise
        raise UserError(lost_worker_message(error, stage)) from None
    finally:
        set_precision(False)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _open_live(directory: Path | None, resume: bool):
    if directory is None:
        return None
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    # The pipeline's dvc.yaml declares the plots; dvclive must not edit it or make experiments.
    try:
        return Live(str(directory), resume=resume, save_dvc_exp=False, dvcyaml=False)
    except SCMError as error:  # dvclive 3.49 asks git for HEAD even when there is none yet
        raise UserError(f"{directory}: dvclive cannot start ({error}): the git repository has no "
                        "commit yet; commit once (git add -A && git commit) and run again"
                        ) from None


def _run_schedule(plan: Plan, state: ResumeState, live_dir: Path | None, stage: str) -> dict:
    """Run the phases in order with one dvclive run across them; returns their summaries."""
    summaries = {}
    check_same_progress(state, tf.distribute.get_strategy())
    live = _open_live(live_dir, resume=state.has_progress())
    try:
        for phase, (train_data, validation) in plan.phases:
            summaries[phase.name] = run_phase(phase, plan.model, train_data, validation,
                                              plan.val_inputs, plan.val_targets, state, live,
                                              stage)
            if plan.after_phase is not None:
                plan.after_phase(phase.name, summaries[phase.name])
    finally:
        if live is not None:
            live.end()
    return summaries


def _final_scores(model: keras.Model, val_inputs, val_targets: np.ndarray) -> dict:
    logits = predict_logits(model, val_inputs)
    return {
        "val_loss": float(hard_loss(tf.constant(val_targets), tf.constant(logits))),
        "val_f1_macro": f1_macro(val_targets, logits > 0),
        "baselines": trivial_baselines(val_targets),
    }


def _load_for(directory: Path, dataset: PreparedDataset):
    """A trained model and its facts; it must have been trained on the prepared data's classes."""
    model, meta = load_trained(directory)
    if meta["classes"] != dataset.classes:
        raise UserError(f"{directory}: trained on classes {meta['classes']}, the prepared data "
                        f"has {dataset.classes}; rerun the training stages (dvc repro)")
    return model, meta


def _open_shards(location: str | Path, dataset: PreparedDataset, sizes: dict[str, int]) -> Shards:
    """The shards stage's output; its image sizes must be the ones the models are built for."""
    shards = Shards.open(location, dataset)
    for view, size in sizes.items():
        shards.require_size(view, size, f"the {view} model")
    return shards


def _check_batch(dataset: PreparedDataset, batch_size: int, key: str) -> None:
    if not dataset.splits["val"]:
        raise UserError("the val split is empty after prepare: validation and early stopping "
                        "need it")
    if batch_size > len(dataset.splits["train"]):
        print(f"note: {key} {batch_size} exceeds the {len(dataset.splits['train'])} training "
              "images: each epoch is one smaller batch")


@dataclass
class _TwoPhases:
    """The seed's schedule: head warm-up, then the top of the backbone (early stopping, LR
    reduction); ``finetune_model`` is the model itself or a Distiller around it. ``trainable``
    records how many backbone layers each phase trained, once it has run."""

    phases: list = field(default_factory=list)
    trainable: dict = field(default_factory=dict)

    @classmethod
    def of(cls, model: keras.Model, config: dict, head_data: tuple,
           finetune_model: keras.Model, finetune_data: tuple,
           finetune_steps: int | None = None) -> "_TwoPhases":
        schedule = cls()
        pretrained = config["weights"] is not None

        def configure(phase_name, fraction=0.0):
            def apply():
                schedule.trainable[phase_name] = set_trainable(model, phase_name, fraction,
                                                               pretrained)
            return apply

        head_loss = keras.losses.BinaryCrossentropy(from_logits=True)
        schedule.phases = [
            (Phase("head", config["epochs_head"], config["lr_head"], config["weight_decay"],
                   configure("head"), model, head_loss), head_data),
            (Phase("finetune", config["epochs_finetune"], config["lr_finetune"],
                   config["weight_decay"], configure("finetune", config["unfreeze_fraction"]),
                   finetune_model, head_loss if finetune_model is model else None,
                   early_stopping_patience=config["early_stopping_patience"],
                   reduce_lr_patience=config["reduce_lr_patience"],
                   steps_per_epoch=finetune_steps), finetune_data),
        ]
        return schedule


def _teacher_plan(params: dict, paths: StagePaths, dataset: PreparedDataset) -> Plan:
    config = params["teacher"]
    _check_batch(dataset, config["batch_size"], "teacher.batch_size")
    size, classes = config["input_size"], dataset.classes
    shards = _open_shards(paths.shards, dataset, {"teacher": size})
    data = view_data(shards, dataset, "teacher", config["batch_size"], params["seed"],
                     params["augmentation"], params["shards"]["shuffle_buffer"])
    model = build_teacher(len(classes), size, config["dropout"], config["weights"],
                          config["architecture"])
    schedule = _TwoPhases.of(model, config, (data.train, data.validation),
                             model, (data.train, data.validation))
    return Plan(
        model, schedule.phases, data.val_inputs, data.val_targets,
        fingerprint=(config, params["augmentation"]),
        save=lambda out: save_trained(model, out, config["architecture"], classes, size,
                                      config["dropout"]),
        metrics=lambda: {"weights": config["weights"] or "random",
                         "trainable_backbone_layers": schedule.trainable})


def _student_plan(params: dict, paths: StagePaths, dataset: PreparedDataset) -> Plan:
    config, distill = params["student"], params["distillation"]
    _check_batch(dataset, config["batch_size"], "student.batch_size")
    teacher, teacher_meta = _load_for(paths.teacher, dataset)
    size, classes = config["input_size"], dataset.classes
    shards = _open_shards(paths.shards, dataset,
                         {"student": size, "teacher": teacher_meta["input_size"]})
    data = distillation_data(dataset, shards, teacher, config["batch_size"], params["seed"],
                             params["augmentation"], params["shards"]["shuffle_buffer"],
                             min(distill["teacher_passes"], config["epochs_finetune"]))
    model = build_student(len(classes), size, config["dropout"])
    if config["weights"] is not None:
        load_student_weights(model, config["weights"])
    distiller = Distiller(model, teacher, distill["alpha"], distill["temperature"])
    schedule = _TwoPhases.of(model, config, (data.plain_train, data.plain_val),
                             distiller, (data.distill_train, data.distill_val),
                             data.distill_steps_per_epoch)
    checks: dict = {}

    def check_teacher(phase_name: str, summary: dict) -> None:
        if phase_name == "head":  # before the distillation phase: warn while it can be stopped
            checks["teacher"] = teacher_check(data.teacher_val_logits, data.val_targets,
                                              summary["val_f1_macro"], distill["alpha"])
            warn, sentence = verdict(checks["teacher"])
            print(sentence, file=sys.stderr if warn else sys.stdout, flush=True)

    return Plan(
        model, schedule.phases, data.val_inputs, data.val_targets,
        fingerprint=(config, distill, params["augmentation"],
                     file_sha256(paths.teacher / "weights.h5")),
        save=lambda out: save_trained(model, out, STUDENT_ARCHITECTURE, classes, size,
                                      config["dropout"]),
        metrics=lambda: {"weights": config["weights"] or "random",
                         "trainable_backbone_layers": schedule.trainable,
                         "teacher_check": checks["teacher"],
                         "distillation": {"alpha": distill["alpha"],
                                          "temperature": distill["temperature"]}},
        after_phase=check_teacher)


CALIBRATION_IMAGES = 256  # un-augmented training images that set the initial activation ranges


def _qat_plan(params: dict, paths: StagePaths, dataset: PreparedDataset) -> Plan:
    """No weight decay: QAT is a short fine-tune at a tiny learning rate whose purpose is to let
    the quantisers settle on the weights the student ended with."""
    from stages.common.quantization.qat import (calibrate_activation_ranges, quantize_student,
                                                save_qat_weights)

    config, distill = params["qat"], params["distillation"]
    batch_size = params["student"]["batch_size"]
    student, meta = _load_for(paths.student, dataset)
    teacher, teacher_meta = _load_for(paths.teacher, dataset)
    shards = _open_shards(paths.shards, dataset, {"student": meta["input_size"],
                                                 "teacher": teacher_meta["input_size"]})
    data = distillation_data(dataset, shards, teacher, batch_size, params["seed"],
                             params["augmentation"], params["shards"]["shuffle_buffer"],
                             min(distill["teacher_passes"], config["epochs"]))
    before = _final_scores(student, data.val_inputs, data.val_targets)
    qat_model = quantize_student(student)
    calibrate_activation_ranges(student, qat_model, (
        normalize_student(chunk) for chunk in
        shards.pixel_chunks("train", "student", chunk=batch_size, limit=CALIBRATION_IMAGES)))
    distiller = Distiller(qat_model, teacher, distill["alpha"], distill["temperature"])
    phase = Phase("qat", config["epochs"], config["lr"], 0.0, lambda: None, distiller, None,
                  steps_per_epoch=data.distill_steps_per_epoch)

    def save(out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        save_qat_weights(qat_model, out)
        (out / "model.json").write_text(json.dumps({**meta, "quantization": "qat"}, indent=2)
                                        + "\n")

    return Plan(
        qat_model, [(phase, (data.distill_train, data.distill_val))], data.val_inputs,
        data.val_targets,
        fingerprint=(config, distill, batch_size, params["augmentation"],
                     file_sha256(paths.student / "weights.h5"),
                     file_sha256(paths.teacher / "weights.h5")),
        save=save,
        metrics=lambda: {"float_student_before_qat": {k: before[k]
                                                      for k in ("val_loss", "val_f1_macro")}})


TEACHER = Recipe("train_teacher", layout.TEACHER, layout.TEACHER_METRICS, _teacher_plan)
STUDENT = Recipe("train_student", layout.STUDENT, layout.STUDENT_METRICS, _student_plan)
QAT = Recipe("qat", layout.QAT, layout.QAT_METRICS, _qat_plan, mixed_precision_allowed=False)
