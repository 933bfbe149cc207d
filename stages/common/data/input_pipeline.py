"""tf.data input pipeline: letterboxed images, augmented on the fly (``augmentation``), seeded.

The images come letterboxed already, from the sharded files of the shards stage (``shards``:
streamed, bounded memory); epochs only decode, augment and normalise. Randomness is
reproducible: the shuffle and the per-example augmentation parameters come from ``seed`` and
change every epoch (``reshuffle_each_iteration`` / ``rerandomize_each_iteration``).

What each training stage is fed is assembled here too: ``view_data`` for one model on its own
view, ``distillation_data`` for the student beside its teacher (the teacher's logits computed
online, or once on fixed augmented passes, kept as ``teacher_outputs.TeacherOutputs``).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from stages.common.core.params_schema import AugmentationParams, Params
from stages.common.data.augmentation import (
    Augmentation,
    augment_views,
    augmentation_parameters,
    mix_batch,
    mixup_weights,
)
from stages.common.data.dataset import UNLABELLED, PreparedDataset
from stages.common.data.preprocessing import NORMALIZERS
from stages.common.data.teacher_outputs import TeacherOutputs
from stages.common.data.tfrecord_shards import Shards

# The key under which a batch carries the teacher's logits instead of its images
TEACHER_LOGITS = "teacher_logits"


def make_dataset(source: tf.data.Dataset, normalizers: list[str], batch_size: int, *,
                 training: bool, seed: int, augmentation: Augmentation | None = None,
                 augmentation_pass: int | None = None,
                 teacher_logits: np.ndarray | None = None,
                 keep_index: bool = False) -> tf.data.Dataset:
    """Batches of (inputs, targets) from elements ``((pixels per view), (boxes per view),
    targets, index)``; inputs is one tensor per view (a tuple if several), normalised for its
    model ("student" or "teacher"). Shuffling is the source's (Shards.records shuffles the
    serialised records, before decoding).

    Training augments every example, one parameter set shared by its views. The parameters are
    fresh every epoch, or, with ``augmentation_pass`` = k, a fixed function of (seed, k, index):
    every run of pass k augments each image identically, so a teacher's outputs on pass k can be
    computed once and reused. ``teacher_logits`` (N x C, by index) makes the inputs
    ``(student images, {"teacher_logits": ...})`` for the Distiller: the teacher's outputs on
    the very images of this pass, blends included (see _cached_teacher_passes). ``keep_index``
    makes the training inputs ``(inputs, index)``, index of each example (of a blend: the
    example blended into).
    """
    normalizer_functions = [NORMALIZERS[name] for name in normalizers]
    table = None if teacher_logits is None else tf.constant(teacher_logits, tf.float32)

    def finish(images, index):
        normalised = tuple(norm(image) for norm, image in zip(normalizer_functions, images))
        inputs = normalised if len(normalised) > 1 else normalised[0]
        if table is not None:
            return (inputs, {TEACHER_LOGITS: tf.gather(table, index)})
        return (inputs, index) if keep_index else inputs

    data = source
    if not training:
        data = data.map(lambda images, _, target, index: (
            finish([tf.cast(i, tf.float32) for i in images], index), target),
            num_parallel_calls=tf.data.AUTOTUNE)
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    if augmentation_pass is None:
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        data = tf.data.Dataset.zip((data, draws)).map(
            lambda element, draw: (*element, tf.random.stateless_uniform(
                [6], seed=tf.stack([draw, tf.constant(0, tf.int64)]))))
    else:
        pass_seed = tf.constant(seed * 1_000_003 + augmentation_pass, tf.int64)
        data = data.map(lambda *element: (*element, tf.random.stateless_uniform(
            [6], seed=tf.stack([pass_seed, element[3]]))))
    config = augmentation or Augmentation()

    def augment(images, view_boxes, targets, index, uniforms):
        parameters = augmentation_parameters(uniforms, config)
        augmented = [augment_views(tf.cast(view, tf.float32), boxes, parameters)
                     for view, boxes in zip(images, view_boxes)]
        if config.mixup > 0:
            augmented, targets = mix_batch(augmented, targets,
                                           mixup_weights(uniforms, config.mixup))
        return finish(augmented, index), targets

    return data.batch(batch_size).map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def distilling_augmentation(augmentation: AugmentationParams,
                            mixup_alpha: float | None) -> AugmentationParams:
    """What the distilling phases (student fine-tune, QAT) augment with: the shared
    augmentation, with ``distillation.mixup_alpha``'s blends where it is set."""
    if mixup_alpha is None:
        return augmentation
    return dataclasses.replace(augmentation, mixup_alpha=mixup_alpha)


def teacher_outputs_key(params: Params, teacher_weights: Path, teacher_size: int,
                        batch_size: int, dataset: PreparedDataset,
                        unlabelled: Shards | None = None) -> str:
    """The key of the teacher outputs that the student stage saves and QAT reads: both stages
    make their passes from the same params, so both compute it here. ``unlabelled``: the images
    without labels that join the passes."""
    return TeacherOutputs.key_of(
        teacher_weights, teacher_size, params.seed,
        distilling_augmentation(params.augmentation, params.distillation.mixup_alpha),
        batch_size, dataset, params.shards.shuffle_buffer,
        None if unlabelled is None else unlabelled.manifest["dataset_fingerprint"])


def predict_logits(model, inputs: tf.data.Dataset) -> np.ndarray:
    """A model's logits on every batch of ``inputs`` (images only), in order."""
    return np.concatenate([model(batch, training=False).numpy() for batch in inputs], axis=0)


def compiled_inference(model):
    """``model(images, training=False)`` traced once into a graph, for a model run over many
    batches: the teacher on its val and augmented passes. Called op by op instead, a pass of
    1 200 images through the Lite2 teacher at 260 px took 36 s against 26 s compiled (2-core
    EPYC, docs/benchmark.md, eighteenth round); the logits differ by 1e-5 (another order of
    float sums). A call with another batch size (a split's last batch) relaxes the trace to
    any size instead of tracing again per size."""
    forward = tf.function(lambda images: model(images, training=False), reduce_retracing=True)

    def infer(images, training=False):  # called as the model is, by predict_logits and the passes
        if training:
            raise ValueError("compiled_inference runs the model in inference mode only")
        return forward(images)

    return infer


def _training_batches(shards: Shards, views: list[str], batch_size: int, seed: int,
                      augment: Augmentation, shuffle_buffer: int,
                      unlabelled: Shards | None = None) -> tf.data.Dataset:
    source = shards.records("train", views, shuffle_buffer=shuffle_buffer, seed=seed,
                            unlabelled=unlabelled)
    return make_dataset(source, views, batch_size, training=True, seed=seed, augmentation=augment)


def _validation_batches(shards: Shards, view: str, batch_size: int, seed: int) -> tf.data.Dataset:
    return make_dataset(shards.records("val", [view]), [view], batch_size, training=False,
                        seed=seed)


@dataclass
class ViewData:
    """One model's data on its own view: augmented training batches, validation batches."""

    train: tf.data.Dataset  # images, targets
    validation: tf.data.Dataset  # images, targets
    val_inputs: tf.data.Dataset  # images
    val_targets: np.ndarray


def view_data(shards: Shards, dataset: PreparedDataset, view: str, batch_size: int, seed: int,
              augmentation: AugmentationParams, shuffle_buffer: int) -> ViewData:
    train = _training_batches(shards, [view], batch_size, seed,
                              Augmentation.from_params(augmentation), shuffle_buffer)
    validation = _validation_batches(shards, view, batch_size, seed)
    return ViewData(train, validation, validation.map(lambda x, y: x),
                    dataset.target_matrix("val"))


@dataclass
class DistillationData:
    plain_train: tf.data.Dataset  # student images, targets
    plain_val: tf.data.Dataset
    distill_train: tf.data.Dataset  # student images with teacher images or logits, targets
    distill_val: tf.data.Dataset  # (student images, {"teacher_logits": ...}), targets
    val_inputs: tf.data.Dataset  # student images
    val_targets: np.ndarray
    teacher_outputs: TeacherOutputs  # its passes: those distill_train cycles through, if any
    distill_steps_per_epoch: int | None  # set when distill_train is endless (cycled passes)
    blended: bool  # mixup in the distilling batches: their targets are not the labels
    unlabelled_images: int  # in the distilling batches, after the training images (by index)

    @property
    def teacher_val_logits(self) -> np.ndarray:
        return self.teacher_outputs.val


def _pass_batches(shards: Shards, views: list[str], number: int, batch_size: int, seed: int,
                  augment: Augmentation, shuffle_buffer: int,
                  teacher_logits: np.ndarray | None = None,
                  keep_index: bool = False, unlabelled: Shards | None = None) -> tf.data.Dataset:
    """Fixed augmented pass ``number`` of the training set (see make_dataset). With mixup the
    pass is also one fixed sequence of batches, so that every replay, whichever views it reads,
    blends the same pairs with the same weights (the partner and the weight depend on the
    batch); without, its order is drawn anew at each replay."""
    return make_dataset(
        shards.records("train", views, shuffle_buffer=shuffle_buffer, seed=seed + number,
                       reshuffle=augment.mixup == 0, unlabelled=unlabelled),
        views, batch_size, training=True, seed=seed, augmentation=augment,
        augmentation_pass=number, teacher_logits=teacher_logits, keep_index=keep_index)


def _teacher_logits_of_pass(shards: Shards, teacher, number: int, batch_size: int, seed: int,
                            augment: Augmentation, shuffle_buffer: int,
                            unlabelled: Shards | None = None) -> np.ndarray:
    """The teacher's logits (N x C, by index) on the images of fixed pass ``number``, its own
    view read in the batches the student's view will come in: the order, augmentation and
    blends of a pass do not depend on the views read. With mixup the teacher so labels each
    blend itself: soft targets on images off the training set, where a teacher that has fitted
    its training images may still have something to teach (on the hard benchmark it did not:
    docs/benchmark.md, seventh round)."""
    count = shards.count("train", unlabelled)
    logits = np.zeros((count, len(shards.manifest["classes"])), np.float32)
    seen = np.zeros(count, bool)
    for (teacher_images, index), _ in _pass_batches(
            shards, ["teacher"], number, batch_size, seed, augment, shuffle_buffer,
            keep_index=True, unlabelled=unlabelled):
        logits[index.numpy()] = teacher(teacher_images, training=False).numpy()
        seen[index.numpy()] = True
    if not seen.all():
        raise RuntimeError(f"teacher pass {number}: {int((~seen).sum())} training images unseen")
    return logits


def cached_feature_passes(shards: Shards, view: str, extractor, passes: int, batch_size: int,
                          seed: int, augmentation: AugmentationParams, shuffle_buffer: int,
                          validation: tf.data.Dataset):
    """A head phase on cached features: ``extractor`` (a frozen backbone) run once on
    ``passes`` fixed augmented passes of the training set and on ``validation``. Returns the
    endless (features, targets) training dataset that cycles through the passes in the order
    they were drawn, its steps per epoch, and the validation (features, targets) batches.
    Memory: passes x training images x the feature width, in float32."""
    augment = Augmentation.from_params(augmentation)
    started = time.monotonic()

    def features_of(batches: tf.data.Dataset) -> tf.data.Dataset:
        features, targets = [], []
        for images, batch_targets in batches:
            features.append(tf.cast(extractor(images, training=False), tf.float32).numpy())
            targets.append(batch_targets.numpy())
        return tf.data.Dataset.from_tensor_slices(
            (np.concatenate(features), np.concatenate(targets))).batch(batch_size)

    cycle = features_of(_pass_batches(shards, [view], 0, batch_size, seed, augment, shuffle_buffer))
    for number in range(1, passes):
        cycle = cycle.concatenate(features_of(
            _pass_batches(shards, [view], number, batch_size, seed, augment, shuffle_buffer)))
    validation_features = features_of(validation)
    plural = "es" if passes > 1 else ""
    print(f"{view}: backbone features of {passes} augmented pass{plural} and of val computed once "
          f"for the head phase ({time.monotonic() - started:.0f} s)", flush=True)
    return cycle.repeat(), -(-shards.count("train") // batch_size), validation_features


def _cached_teacher_passes(shards: Shards, teacher, passes: int, batch_size: int, seed: int,
                           augment: Augmentation, shuffle_buffer: int, known: list,
                           unlabelled: Shards | None = None):
    """``passes`` fixed augmentations of the training set (and of ``unlabelled``): the
    teacher's logits on each are computed once (or taken from ``known``, the logits of the first
    passes), then the student cycles through the same passes (same augmented images) with those
    logits, one pass per epoch. Returns the endless dataset, its steps per epoch and each pass's
    logits."""
    count = shards.count("train", unlabelled)
    datasets, pass_logits = [], []
    started = time.monotonic()
    for number in range(passes):
        if number < len(known):
            logits = known[number]
        else:
            logits = _teacher_logits_of_pass(shards, teacher, number, batch_size, seed, augment,
                                             shuffle_buffer, unlabelled)
            print(f"teacher: logits of augmented pass {number + 1}/{passes} ({count} images, "
                  f"{time.monotonic() - started:.0f} s so far)", flush=True)
        pass_logits.append(logits)
        datasets.append(_pass_batches(shards, ["student"], number, batch_size, seed, augment,
                                      shuffle_buffer, teacher_logits=logits,
                                      unlabelled=unlabelled))
    cycle = datasets[0]
    for dataset in datasets[1:]:
        cycle = cycle.concatenate(dataset)
    return cycle.repeat(), -(-count // batch_size), pass_logits


def distillation_data(dataset: PreparedDataset, shards: Shards, teacher, batch_size: int,
                      seed: int, augmentation: AugmentationParams, shuffle_buffer: int,
                      teacher_passes: int, teacher_key: str,
                      known: TeacherOutputs | None = None,
                      mixup_alpha: float | None = None,
                      unlabelled: Shards | None = None) -> DistillationData:
    """Datasets for the student with and without its teacher. Validation images are not
    augmented, so the teacher's validation logits are computed once, not every epoch. The
    training images are augmented: the teacher runs on them online (``teacher_passes`` 0) or
    on ``teacher_passes`` fixed augmented passes computed once (see _cached_teacher_passes).
    ``known``: outputs this teacher already gave under ``teacher_key``, used instead of
    running it again (``teacher_key`` names the outputs returned). ``mixup_alpha``:
    ``distillation.mixup_alpha``, for the distilling batches only (distilling_augmentation); the
    plain batches of the head phase keep ``augmentation``. ``unlabelled``: images without
    labels (``tfrecord_shards.open_unlabelled``) that join the distilling batches only, their
    targets NaN: the Distiller gives each the teacher's sigmoid on its view as its hard target.
    The head phase trains on the labelled images alone."""
    if known is not None and known.key != teacher_key:
        raise ValueError("the known teacher outputs were made under another key")
    val_targets = dataset.target_matrix("val")
    augment = Augmentation.from_params(distilling_augmentation(augmentation, mixup_alpha))
    plain_val = _validation_batches(shards, "student", batch_size, seed)
    teacher_forward = compiled_inference(teacher)  # traced at its first call, if any
    if known is not None:
        teacher_logits = known.val
        reused = min(len(known.passes), teacher_passes)
        print(f"teacher: logits on val and {reused} augmented pass(es) of {teacher_passes} read "
              "from the student stage", flush=True)
    else:
        teacher_logits = predict_logits(teacher_forward, _validation_batches(
            shards, "teacher", batch_size, seed).map(lambda x, y: x))
    logits = tf.data.Dataset.from_tensor_slices(teacher_logits).batch(batch_size)
    distill_val = tf.data.Dataset.zip((plain_val, logits)).map(
        lambda student, teacher_batch: ((student[0], {TEACHER_LOGITS: teacher_batch}), student[1]))
    pass_logits = []
    if teacher_passes:
        distill_train, steps, pass_logits = _cached_teacher_passes(
            shards, teacher_forward, teacher_passes, batch_size, seed, augment, shuffle_buffer,
            known.passes if known is not None else [], unlabelled)
    else:
        distill_train, steps = _training_batches(shards, ["student", "teacher"], batch_size,
                                                 seed, augment, shuffle_buffer, unlabelled), None
    plain_train = _training_batches(shards, ["student"], batch_size, seed,
                                    Augmentation.from_params(augmentation), shuffle_buffer)
    return DistillationData(plain_train, plain_val, distill_train, distill_val,
                            plain_val.map(lambda x, y: x), val_targets,
                            TeacherOutputs(teacher_key, teacher_logits, pass_logits), steps,
                            augment.mixup > 0,
                            0 if unlabelled is None else unlabelled.count(UNLABELLED))
