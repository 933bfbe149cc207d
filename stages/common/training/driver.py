"""The teacher and student training recipes (seed sections 2 and 3), used by the stage scripts.

Teacher: phase "head" trains the classifier on a frozen EfficientNet-B3; phase "finetune"
unfreezes the top ``teacher.unfreeze_fraction`` of the backbone at a low learning rate.
Student: phase "head" trains the classifier of EfficientNet-Lite B1 with the hard labels; phase
"finetune" unfreezes the top ``student.unfreeze_fraction`` and trains with the distillation loss
against the frozen teacher, both seeing the same augmented image.

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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import tensorflow as tf

from stages.common.data.input_pipeline import Augmentation, make_dataset
from stages.common.data.tfrecord_shards import Shards
from stages.common.training.teacher_check import teacher_check, verdict
from stages.common.data.dataset import PreparedDataset, load_prepared
from stages.common.core.errors import UserError
from stages.common.training.losses import hard_loss
from stages.common.evaluation.metrics import f1_macro, trivial_baselines
from stages.common.data.preprocessing import normalize_student
from stages.common.models.architectures import (STUDENT_ARCHITECTURE, build_student, build_teacher,
                                                load_student_weights, load_trained, save_trained,
                                                set_trainable)
from stages.common.core.hashing import file_sha256, json_sha256
from stages.common.training.runtime import (LOST_WORKER_ERRORS, TEACHER_LOGITS, Distiller, Phase,
                                            ResumeState, check_same_progress, distribution_strategy,
                                            is_chief, lost_worker_message, predict_logits,
                                            run_phase, seed_everything, set_precision)

keras = tf.keras


@dataclass
class StagePaths:
    prepared: Path = Path("data/prepared")
    shards: str = "data/shards"  # or a URL every worker of a cluster reads (file://, gs://)
    out: Path = Path("models/teacher")
    metrics: Path = Path("metrics/teacher.json")
    live: Path | None = Path("dvclive/train_teacher")
    checkpoints: Path = Path("models/checkpoints/train_teacher")
    teacher: Path = Path("models/teacher")  # read by the student and QAT stages
    student: Path = Path("models/student")  # read by the QAT stage
    worker_scratch: Path | None = None  # set on a multi-worker cluster's non-chief workers


def _load_for(directory: Path, dataset: PreparedDataset):
    """A trained model and its facts; it must have been trained on the prepared data's classes."""
    model, meta = load_trained(directory)
    if meta["classes"] != dataset.classes:
        raise UserError(f"{directory}: trained on classes {meta['classes']}, the prepared data "
                        f"has {dataset.classes}; rerun the training stages (dvc repro)")
    return model, meta


def _open_shards(paths: StagePaths, dataset: PreparedDataset, sizes: dict[str, int]) -> Shards:
    """The shards stage's output; its image sizes must be the ones the models are built for."""
    shards = Shards.open(paths.shards, dataset)
    for view, size in sizes.items():
        shards.require_size(view, size, f"the {view} model")
    return shards


def _targets(dataset: PreparedDataset, split: str) -> np.ndarray:
    return np.array(dataset.targets(split), dtype=np.float32).reshape(-1, len(dataset.classes))


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
                        "commit yet; commit once (git add -A && git commit) and run again") from None


def _final_scores(model: keras.Model, val_inputs, val_targets: np.ndarray) -> dict:
    logits = predict_logits(model, val_inputs)
    return {
        "val_loss": float(hard_loss(tf.constant(val_targets), tf.constant(logits))),
        "val_f1_macro": f1_macro(val_targets, logits > 0),
        "baselines": trivial_baselines(val_targets),
    }


def _write_metrics(path: Path, metrics: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def _check_batch(dataset: PreparedDataset, batch_size: int, key: str) -> None:
    if not dataset.splits["val"]:
        raise UserError("the val split is empty after prepare: validation and early stopping need it")
    if batch_size > len(dataset.splits["train"]):
        print(f"note: {key} {batch_size} exceeds the {len(dataset.splits['train'])} training "
              "images: each epoch is one smaller batch")


@dataclass
class DistillationData:
    plain_train: tf.data.Dataset  # student images, targets
    plain_val: tf.data.Dataset
    distill_train: tf.data.Dataset  # student images with teacher images or logits, targets
    distill_val: tf.data.Dataset  # (student images, {"teacher_logits": ...}), targets
    val_inputs: tf.data.Dataset  # student images
    val_targets: np.ndarray
    teacher_val_logits: np.ndarray
    distill_steps_per_epoch: int | None  # set when distill_train is endless (cycled passes)


def _cached_teacher_passes(shards: Shards, teacher: keras.Model, passes: int, batch_size: int,
                           seed: int, augment: Augmentation, shuffle_buffer: int):
    """``passes`` fixed augmentations of the training set: the teacher's logits on each are
    computed once, then the student cycles through the same passes (same augmented images) with
    those logits, one pass per epoch. Returns the endless dataset and its steps per epoch."""
    count = shards.count("train")
    datasets = []
    started = time.monotonic()
    for number in range(passes):
        teacher_images = make_dataset(shards.records("train", ["teacher"]), ["teacher"], batch_size,
                                      training=True, seed=seed, augmentation=augment,
                                      augmentation_pass=number)
        logits = predict_logits(teacher, teacher_images.map(lambda images, targets: images))
        print(f"teacher: logits of augmented pass {number + 1}/{passes} ({count} images, "
              f"{time.monotonic() - started:.0f} s so far)", flush=True)
        datasets.append(make_dataset(
            shards.records("train", ["student"], shuffle_buffer=shuffle_buffer, seed=seed + number),
            ["student"], batch_size, training=True, seed=seed, augmentation=augment,
            augmentation_pass=number, teacher_logits=logits))
    cycle = datasets[0]
    for dataset in datasets[1:]:
        cycle = cycle.concatenate(dataset)
    return cycle.repeat(), -(-count // batch_size)


def _distillation_data(dataset: PreparedDataset, shards: Shards, teacher: keras.Model,
                       batch_size: int, seed: int, augmentation: dict, shuffle_buffer: int,
                       teacher_passes: int) -> DistillationData:
    """Datasets for the student with and without its teacher. Validation images are not
    augmented, so the teacher's validation logits are computed once, not every epoch. The
    training images are augmented: the teacher runs on them online (``teacher_passes`` 0) or
    on ``teacher_passes`` fixed augmented passes computed once (see _cached_teacher_passes)."""
    val_targets = _targets(dataset, "val")
    augment = Augmentation.from_params(augmentation)

    def training_data(views):
        source = shards.records("train", views, shuffle_buffer=shuffle_buffer, seed=seed)
        return make_dataset(source, views, batch_size, training=True, seed=seed,
                            augmentation=augment)

    def validation_data(view):
        return make_dataset(shards.records("val", [view]), [view], batch_size, training=False,
                            seed=seed)

    plain_val = validation_data("student")
    teacher_logits = predict_logits(teacher, validation_data("teacher").map(lambda x, y: x))
    logits = tf.data.Dataset.from_tensor_slices(teacher_logits).batch(batch_size)
    distill_val = tf.data.Dataset.zip((plain_val, logits)).map(
        lambda student, teacher_batch: ((student[0], {TEACHER_LOGITS: teacher_batch}), student[1]))
    if teacher_passes:
        distill_train, steps = _cached_teacher_passes(shards, teacher, teacher_passes, batch_size,
                                                      seed, augment, shuffle_buffer)
    else:
        distill_train, steps = training_data(["student", "teacher"]), None
    return DistillationData(training_data(["student"]), plain_val, distill_train, distill_val,
                            plain_val.map(lambda x, y: x), val_targets, teacher_logits, steps)


def _two_phases(model: keras.Model, config: dict, pretrained: bool, head_data: tuple,
                finetune_model: keras.Model, finetune_data: tuple,
                finetune_steps: int | None = None):
    """The seed's schedule: head warm-up, then the top of the backbone (early stopping, LR
    reduction); ``finetune_model`` is the model itself or a Distiller around it. Returns the
    phases with their (train, validation) data, and a dict that records how many backbone
    layers each phase trained."""
    trainable: dict[str, int] = {}

    def configure(phase_name, fraction=0.0):
        def apply():
            trainable[phase_name] = set_trainable(model, phase_name, fraction, pretrained)
        return apply

    head_loss = keras.losses.BinaryCrossentropy(from_logits=True)
    phases = [
        (Phase("head", config["epochs_head"], config["lr_head"], config["weight_decay"],
               configure("head"), model, head_loss), head_data),
        (Phase("finetune", config["epochs_finetune"], config["lr_finetune"], config["weight_decay"],
               configure("finetune", config["unfreeze_fraction"]), finetune_model,
               head_loss if finetune_model is model else None,
               early_stopping_patience=config["early_stopping_patience"],
               reduce_lr_patience=config["reduce_lr_patience"], steps_per_epoch=finetune_steps),
         finetune_data),
    ]
    return phases, trainable


def _run_schedule(phases: list, model: keras.Model, val_inputs, val_targets: np.ndarray,
                  state: ResumeState, live_dir: Path | None, stage: str,
                  after_phase=None) -> dict:
    """Run the phases in order with one dvclive run across them; returns their summaries.
    ``after_phase(name, summary)``, if given, runs when each phase ends."""
    summaries = {}
    check_same_progress(state, tf.distribute.get_strategy())
    live = _open_live(live_dir, resume=state.has_progress())
    try:
        for phase, (train, validation) in phases:
            summaries[phase.name] = run_phase(phase, model, train, validation, val_inputs,
                                              val_targets, state, live, stage)
            if after_phase is not None:
                after_phase(phase.name, summaries[phase.name])
    finally:
        if live is not None:
            live.end()
    return summaries


def _on_devices(train_function, params: dict, paths: StagePaths, stage: str,
                mixed_precision_allowed: bool = True) -> dict:
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
            return train_function(params, paths)
    except LOST_WORKER_ERRORS as error:
        if params["train"]["strategy"] != "multi_worker":
            raise
        raise UserError(lost_worker_message(error, stage)) from None
    finally:
        set_precision(False)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def train_teacher(params: dict, paths: StagePaths) -> dict:
    return _on_devices(_train_teacher, params, paths, "train_teacher")


def train_student(params: dict, paths: StagePaths) -> dict:
    return _on_devices(_train_student, params, paths, "train_student")


def train_qat(params: dict, paths: StagePaths) -> dict:
    return _on_devices(_train_qat, params, paths, "qat", mixed_precision_allowed=False)


def _train_teacher(params: dict, paths: StagePaths) -> dict:
    started = time.monotonic()
    seed = params["seed"]
    seed_everything(seed)
    config = params["teacher"]
    dataset = load_prepared(paths.prepared)
    _check_batch(dataset, config["batch_size"], "teacher.batch_size")
    size, classes = config["input_size"], dataset.classes
    shards = _open_shards(paths, dataset, {"teacher": size})
    val_targets = _targets(dataset, "val")
    train = make_dataset(shards.records("train", ["teacher"], seed=seed,
                                        shuffle_buffer=params["shards"]["shuffle_buffer"]),
                         ["teacher"], config["batch_size"], training=True, seed=seed,
                         augmentation=Augmentation.from_params(params["augmentation"]))
    validation = make_dataset(shards.records("val", ["teacher"]), ["teacher"],
                              config["batch_size"], training=False, seed=seed)
    val_inputs = validation.map(lambda x, y: x)

    model = build_teacher(len(classes), size, config["dropout"], config["weights"],
                          config["architecture"])
    pretrained = config["weights"] is not None
    state = ResumeState(paths.checkpoints, json_sha256((
        "train_teacher", seed, config, params["augmentation"], dataset.fingerprint())),
        paths.worker_scratch)
    phases, trainable = _two_phases(model, config, pretrained, (train, validation),
                                    model, (train, validation))
    summaries = _run_schedule(phases, model, val_inputs, val_targets, state, paths.live,
                              "train_teacher")
    save_trained(model, paths.out, config["architecture"], classes, size, config["dropout"])
    metrics = {**_final_scores(model, val_inputs, val_targets), "phases": summaries,
               "weights": config["weights"] or "random",
               "trainable_backbone_layers": trainable,
               "wall_time_s": round(time.monotonic() - started, 1)}
    _write_metrics(paths.metrics, metrics)
    state.clear()
    return metrics


def _train_student(params: dict, paths: StagePaths) -> dict:
    started = time.monotonic()
    seed = params["seed"]
    seed_everything(seed)
    config, distill = params["student"], params["distillation"]
    dataset = load_prepared(paths.prepared)
    _check_batch(dataset, config["batch_size"], "student.batch_size")
    teacher, teacher_meta = _load_for(paths.teacher, dataset)
    size, classes = config["input_size"], dataset.classes
    shards = _open_shards(paths, dataset, {"student": size, "teacher": teacher_meta["input_size"]})
    data = _distillation_data(dataset, shards, teacher, config["batch_size"], seed,
                              params["augmentation"], params["shards"]["shuffle_buffer"],
                              min(distill["teacher_passes"], config["epochs_finetune"]))
    val_inputs, val_targets = data.val_inputs, data.val_targets
    model = build_student(len(classes), size, config["dropout"])
    pretrained = config["weights"] is not None
    if pretrained:
        load_student_weights(model, config["weights"])
    teacher_weights_hash = file_sha256(paths.teacher / "weights.h5")
    state = ResumeState(paths.checkpoints, json_sha256((
        "train_student", seed, config, distill, params["augmentation"], dataset.fingerprint(),
        teacher_weights_hash)), paths.worker_scratch)
    distiller = Distiller(model, teacher, distill["alpha"], distill["temperature"])
    phases, trainable = _two_phases(model, config, pretrained, (data.plain_train, data.plain_val),
                                    distiller, (data.distill_train, data.distill_val),
                                    data.distill_steps_per_epoch)
    checks: dict = {}

    def check_teacher(phase_name: str, summary: dict) -> None:
        if phase_name == "head":  # before the distillation phase: warn while it can be stopped
            checks["teacher"] = teacher_check(data.teacher_val_logits, val_targets,
                                              summary["val_f1_macro"], distill["alpha"])
            warn, sentence = verdict(checks["teacher"])
            print(sentence, file=sys.stderr if warn else sys.stdout, flush=True)

    summaries = _run_schedule(phases, model, val_inputs, val_targets, state, paths.live,
                              "train_student", after_phase=check_teacher)
    save_trained(model, paths.out, STUDENT_ARCHITECTURE, classes, size, config["dropout"])
    metrics = {**_final_scores(model, val_inputs, val_targets), "phases": summaries,
               "weights": config["weights"] or "random",
               "trainable_backbone_layers": trainable,
               "teacher_check": checks["teacher"],
               "distillation": {"alpha": distill["alpha"], "temperature": distill["temperature"]},
               "wall_time_s": round(time.monotonic() - started, 1)}
    _write_metrics(paths.metrics, metrics)
    state.clear()
    return metrics


CALIBRATION_IMAGES = 256  # un-augmented training images that set the initial activation ranges


def _train_qat(params: dict, paths: StagePaths) -> dict:
    """Seed section 4: QAT of the whole student, distillation loss still active.

    No weight decay: QAT is a short fine-tune at a tiny learning rate whose purpose is to let the
    quantisers settle on the weights the student ended with.
    """
    from stages.common.quantization.qat import (calibrate_activation_ranges, quantize_student,
                                                save_qat_weights)

    started = time.monotonic()
    seed = params["seed"]
    seed_everything(seed)
    config, distill = params["qat"], params["distillation"]
    batch_size = params["student"]["batch_size"]
    dataset = load_prepared(paths.prepared)
    student, meta = _load_for(paths.student, dataset)
    teacher, teacher_meta = _load_for(paths.teacher, dataset)
    shards = _open_shards(paths, dataset, {"student": meta["input_size"],
                                           "teacher": teacher_meta["input_size"]})
    data = _distillation_data(dataset, shards, teacher, batch_size, seed, params["augmentation"],
                              params["shards"]["shuffle_buffer"],
                              min(distill["teacher_passes"], config["epochs"]))
    val_inputs, val_targets = data.val_inputs, data.val_targets

    before = _final_scores(student, val_inputs, val_targets)
    qat_model = quantize_student(student)
    calibrate_activation_ranges(student, qat_model, (
        normalize_student(chunk) for chunk in
        shards.pixel_chunks("train", "student", chunk=batch_size, limit=CALIBRATION_IMAGES)))
    state = ResumeState(paths.checkpoints, json_sha256((
        "qat", seed, config, distill, batch_size, params["augmentation"], dataset.fingerprint(),
        file_sha256(paths.student / "weights.h5"), file_sha256(paths.teacher / "weights.h5"))),
        paths.worker_scratch)
    distiller = Distiller(qat_model, teacher, distill["alpha"], distill["temperature"])
    phase = Phase("qat", config["epochs"], config["lr"], 0.0, lambda: None, distiller, None,
                  steps_per_epoch=data.distill_steps_per_epoch)
    summary = _run_schedule([(phase, (data.distill_train, data.distill_val))], qat_model, val_inputs, val_targets,
                            state, paths.live, "qat")["qat"]
    paths.out.mkdir(parents=True, exist_ok=True)
    save_qat_weights(qat_model, paths.out)
    (paths.out / "model.json").write_text(json.dumps({**meta, "quantization": "qat"}, indent=2) + "\n")
    metrics = {**_final_scores(qat_model, val_inputs, val_targets), "phases": {"qat": summary},
               "float_student_before_qat": {k: before[k] for k in ("val_loss", "val_f1_macro")},
               "wall_time_s": round(time.monotonic() - started, 1)}
    _write_metrics(paths.metrics, metrics)
    state.clear()
    return metrics
