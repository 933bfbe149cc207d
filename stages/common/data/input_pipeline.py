"""tf.data input pipeline: letterboxed images augmented on the fly, seeded.

The images come letterboxed already, from the sharded files of the shards stage (``shards``:
streamed, bounded memory); epochs only decode, augment and normalise.

Augmentation (training only) draws one set of random parameters per example and applies the
same parameters to every "view" of it: in distillation the student's 240 px letterbox and the
teacher's 300 px letterbox of the same image get the same flip, rotation, zoom and colour
change, expressed relative to the canvas so they describe the same augmented image.
- colour: brightness shift, contrast and saturation factors, applied to the image content only
  (the letterbox border stays black, as on the phone);
- geometry: horizontal flip, rotation by up to ``random_rotation_factor`` of a full turn, zoom
  by up to ``random_zoom_factor`` in or out, about the canvas centre, bilinear, black fill.
- mixup (``mixup_alpha`` > 0, off in the seed's recipe): each example blended with another of
  its batch after the above, labels blended alike (``mix_batch``).
Randomness is reproducible: the shuffle and the per-example parameters come from ``seed`` and
change every epoch (``reshuffle_each_iteration`` / ``rerandomize_each_iteration``).

What each training stage is fed is assembled here too: ``view_data`` for one model on its own
view, ``distillation_data`` for the student beside its teacher (the teacher's logits computed
online, or once on fixed augmented passes).
"""
from __future__ import annotations

import math
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import tensorflow as tf

from stages.common.core.errors import UserError, way_back
from stages.common.core.hashing import file_sha256, json_sha256
from stages.common.core.params_schema import AugmentationParams
from stages.common.data.dataset import PreparedDataset
from stages.common.data.preprocessing import NORMALIZERS
from stages.common.data.tfrecord_shards import Shards

# The key under which a batch carries the teacher's logits instead of its images
TEACHER_LOGITS = "teacher_logits"


@dataclass(frozen=True)
class Augmentation:
    flip: bool = False
    rotation: float = 0.0  # fraction of a full turn, both directions
    zoom: float = 0.0  # relative, in and out
    brightness: float = 0.0  # shift in units of the full range [0, 1]
    contrast: float = 0.0
    saturation: float = 0.0
    mixup: float = 0.0  # Beta(a, a) of the blend weight; 0: no mixup

    @classmethod
    def from_params(cls, params: AugmentationParams) -> "Augmentation":
        jitter = params.color_jitter
        return cls(params.random_flip_horizontal, params.random_rotation_factor,
                   params.random_zoom_factor, jitter.brightness, jitter.contrast,
                   jitter.saturation, params.mixup_alpha)


def _parameters(uniforms, config: Augmentation) -> dict:
    """Augmentation parameters from uniforms in [0, 1), one row of 6 per example ([B, 6])."""
    def symmetric(value, amount):
        return (2.0 * value - 1.0) * amount

    return {
        "flip": tf.logical_and(tf.constant(config.flip), uniforms[:, 0] < 0.5),
        "angle": symmetric(uniforms[:, 1], config.rotation * 2.0 * math.pi),
        "scale": 1.0 + symmetric(uniforms[:, 2], config.zoom),
        "brightness": symmetric(uniforms[:, 3], config.brightness),
        "contrast": 1.0 + symmetric(uniforms[:, 4], config.contrast),
        "saturation": 1.0 + symmetric(uniforms[:, 5], config.saturation),
    }


# ITU-R BT.601 weights; a list, not a tensor: a module-level tensor would start TensorFlow's
# runtime at import, before a multi-worker strategy can set it up
LUMA = (0.299, 0.587, 0.114)


def _content_masks(boxes, size: int):
    """B x S x S x 1: 1 inside each image's content box, 0 on its letterbox border."""
    positions = tf.range(size)[None, :]
    rows = tf.logical_and(positions >= boxes[:, 0:1], positions < boxes[:, 0:1] + boxes[:, 2:3])
    cols = tf.logical_and(positions >= boxes[:, 1:2], positions < boxes[:, 1:2] + boxes[:, 3:4])
    return tf.cast(tf.logical_and(rows[:, :, None], cols[:, None, :]), tf.float32)[..., None]


def _geometry_transforms(parameters: dict, size: int):
    """B x 8 projective transforms mapping output pixel (x, y) to input pixel, about the centre."""
    centre = (size - 1) / 2.0
    cos, sin = tf.cos(parameters["angle"]), tf.sin(parameters["angle"])
    flip = tf.where(parameters["flip"], -1.0, 1.0)
    inverse_scale = 1.0 / parameters["scale"]
    a, b = cos * flip * inverse_scale, -sin * inverse_scale
    d, e = sin * flip * inverse_scale, cos * inverse_scale
    zeros = tf.zeros_like(a)
    return tf.stack([a, b, centre - a * centre - b * centre,
                     d, e, centre - d * centre - e * centre, zeros, zeros], axis=1)


def mixup_weights(uniforms, alpha: float):
    """Per-example blend weights ~ Beta(alpha, alpha), from two gamma draws whose seed comes
    from the batch's own (seeded) augmentation uniforms, so a fixed pass blends identically
    every time it is replayed."""
    seed = tf.cast(tf.floor(uniforms[0, :2] * 2.0 ** 31), tf.int64)
    shape = tf.shape(uniforms)[:1]
    first = tf.random.stateless_gamma(shape, seed, alpha)
    second = tf.random.stateless_gamma(shape, seed + 1, alpha)
    return first / tf.maximum(first + second, 1e-12)


def mix_batch(views: list, targets, teacher_logits, weights):
    """Mixup adapted to multi-label targets: example i blended with example B-1-i of its batch,
    every view alike and the label vectors alike (a class half present is a target of 0.5).
    Teacher logits computed beforehand, on the unblended images, are blended as probabilities
    (an approximation: with teacher_passes 0 the teacher sees the blended image itself)."""
    def blend(x):
        w = tf.reshape(weights, [-1] + [1] * (len(x.shape) - 1))
        return w * x + (1.0 - w) * tf.reverse(x, axis=[0])

    mixed_targets = blend(tf.cast(targets, tf.float32))
    mixed_logits = None
    if teacher_logits is not None:
        probabilities = tf.clip_by_value(blend(tf.sigmoid(teacher_logits)), 1e-6, 1.0 - 1e-6)
        mixed_logits = tf.math.log(probabilities) - tf.math.log1p(-probabilities)
    return [blend(view) for view in views], mixed_targets, mixed_logits


def augment_views(images, boxes, parameters: dict):
    """Augment a batch (B x S x S x 3 float32 in [0, 255]) with already drawn parameters.

    Colour: brightness shift; contrast about each channel's mean, as ``tf.image.adjust_contrast``;
    saturation as a blend with the image's luma (as PIL's ``ImageEnhance.Color``; a third of the
    cost of an HSV round trip). Then the border is blacked out again and the geometry applied.
    Whole batches at a time: per-example ops cost more than the arithmetic."""
    size = images.shape[1]

    def per_image(values):
        return values[:, None, None, None]

    # in [0, 255] throughout: every pass over the pixels counts
    x = images + per_image(parameters["brightness"] * 255.0)
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    contrast = per_image(parameters["contrast"])
    x = tf.clip_by_value(x * contrast + mean * (1.0 - contrast), 0.0, 255.0)
    gray = tf.reduce_sum(x * tf.constant(LUMA), axis=-1, keepdims=True)
    saturation = per_image(parameters["saturation"])
    x = tf.clip_by_value(x * saturation + gray * (1.0 - saturation), 0.0, 255.0)
    x = x * _content_masks(boxes, size)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=_geometry_transforms(parameters, size),
        output_shape=tf.constant([size, size]), fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def make_dataset(source: tf.data.Dataset, normalizers: list[str], batch_size: int, *,
                 training: bool, seed: int, augmentation: Augmentation | None = None,
                 augmentation_pass: int | None = None,
                 teacher_logits: np.ndarray | None = None) -> tf.data.Dataset:
    """Batches of (inputs, targets) from elements ``((pixels per view), (boxes per view),
    targets, index)``; inputs is one tensor per view (a tuple if several), normalised for its
    model ("student" or "teacher"). Shuffling is the source's (Shards.records shuffles the
    serialised records, before decoding).

    Training augments every example, one parameter set shared by its views. The parameters are
    fresh every epoch, or, with ``augmentation_pass`` = k, a fixed function of (seed, k, index):
    every run of pass k augments each image identically, so a teacher's outputs on pass k can be
    computed once and reused. ``teacher_logits`` (N x C, by index) makes the inputs
    ``(student images, {"teacher_logits": ...})`` for the Distiller.
    """
    normalizer_functions = [NORMALIZERS[name] for name in normalizers]
    table = None if teacher_logits is None else tf.constant(teacher_logits, tf.float32)

    def finish(images, index, logits=None):
        normalised = tuple(norm(image) for norm, image in zip(normalizer_functions, images))
        inputs = normalised if len(normalised) > 1 else normalised[0]
        if table is not None:
            return (inputs, {TEACHER_LOGITS: tf.gather(table, index) if logits is None
                             else logits})
        return inputs

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
        parameters = _parameters(uniforms, config)
        augmented = [augment_views(tf.cast(view, tf.float32), boxes, parameters)
                     for view, boxes in zip(images, view_boxes)]
        if config.mixup > 0:
            logits = None if table is None else tf.gather(table, index)
            augmented, targets, logits = mix_batch(augmented, targets, logits,
                                                   mixup_weights(uniforms, config.mixup))
            return finish(augmented, index, logits), targets
        return finish(augmented, index), targets

    return data.batch(batch_size).map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def predict_logits(model, inputs: tf.data.Dataset) -> np.ndarray:
    """A model's logits on every batch of ``inputs`` (images only), in order."""
    return np.concatenate([model(batch, training=False).numpy() for batch in inputs], axis=0)


def _training_batches(shards: Shards, views: list[str], batch_size: int, seed: int,
                      augment: Augmentation, shuffle_buffer: int) -> tf.data.Dataset:
    source = shards.records("train", views, shuffle_buffer=shuffle_buffer, seed=seed)
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


TEACHER_OUTPUTS_FILE = "teacher_outputs.npz"  # in the student's model folder


@dataclass
class TeacherOutputs:
    """The teacher's logits on the un-augmented val images (N x C) and on each fixed augmented
    pass of the training images (pass k made with ``augmentation_pass`` k), under the key of
    everything that made them. The student stage saves them beside its model; QAT, which
    distils from the same teacher on the same passes, reads them instead of running the teacher
    again."""

    key: str
    val: np.ndarray
    passes: list

    @staticmethod
    def key_of(teacher_weights: Path, teacher_size: int, seed: int,
               augmentation: AugmentationParams, batch_size: int, dataset: PreparedDataset) -> str:
        return json_sha256((file_sha256(teacher_weights), teacher_size, seed, asdict(augmentation),
                            batch_size, dataset.fingerprint()))

    def save(self, path: Path) -> None:
        np.savez(path, key=np.array(self.key), val=self.val,
                 **{f"pass_{number}": logits for number, logits in enumerate(self.passes)})

    @classmethod
    def load(cls, path: Path, key: str, shape: tuple[int, int, int]) -> "TeacherOutputs | None":
        """The saved outputs if they were made under ``key``; None if absent or made otherwise.
        ``shape``: (val images, training images, classes) the arrays must have. A damaged file,
        or one whose arrays have other shapes, is a UserError naming it."""
        if not Path(path).is_file():
            return None
        val_count, train_count, classes = shape
        try:
            with np.load(path, allow_pickle=False) as saved:
                if "key" not in saved.files or str(saved["key"]) != key:
                    return None
                count = sum(name.startswith("pass_") for name in saved.files)
                outputs = cls(key, saved["val"],
                              [saved[f"pass_{number}"] for number in range(count)])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise UserError(f"{path}: damaged ({error}); {way_back(path, 'train_student')}"
                            ) from None
        wrong = [f"{name} is {tuple(array.shape)}, expected {expected}"
                 for name, array, expected in (
                     [("val", outputs.val, (val_count, classes))]
                     + [(f"pass_{n}", logits, (train_count, classes))
                        for n, logits in enumerate(outputs.passes)])
                 if tuple(array.shape) != expected or array.dtype.kind != "f"]
        if wrong:
            raise UserError(f"{path}: {'; '.join(wrong)} (float logits per image and class); "
                            f"{way_back(path, 'train_student')}")
        return outputs


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

    @property
    def teacher_val_logits(self) -> np.ndarray:
        return self.teacher_outputs.val


def _cached_teacher_passes(shards: Shards, teacher, passes: int, batch_size: int, seed: int,
                           augment: Augmentation, shuffle_buffer: int, known: list):
    """``passes`` fixed augmentations of the training set: the teacher's logits on each are
    computed once (or taken from ``known``, the logits of the first passes), then the student
    cycles through the same passes (same augmented images) with those logits, one pass per
    epoch. Returns the endless dataset, its steps per epoch and each pass's logits."""
    count = shards.count("train")
    datasets, pass_logits = [], []
    started = time.monotonic()
    for number in range(passes):
        if number < len(known):
            logits = known[number]
        else:
            teacher_images = make_dataset(shards.records("train", ["teacher"]), ["teacher"],
                                          batch_size, training=True, seed=seed,
                                          augmentation=augment, augmentation_pass=number)
            logits = predict_logits(teacher, teacher_images.map(lambda images, targets: images))
            print(f"teacher: logits of augmented pass {number + 1}/{passes} ({count} images, "
                  f"{time.monotonic() - started:.0f} s so far)", flush=True)
        pass_logits.append(logits)
        datasets.append(make_dataset(
            shards.records("train", ["student"], shuffle_buffer=shuffle_buffer, seed=seed + number),
            ["student"], batch_size, training=True, seed=seed, augmentation=augment,
            augmentation_pass=number, teacher_logits=logits))
    cycle = datasets[0]
    for dataset in datasets[1:]:
        cycle = cycle.concatenate(dataset)
    return cycle.repeat(), -(-count // batch_size), pass_logits


def distillation_data(dataset: PreparedDataset, shards: Shards, teacher, batch_size: int,
                      seed: int, augmentation: AugmentationParams, shuffle_buffer: int,
                      teacher_passes: int, teacher_key: str,
                      known: TeacherOutputs | None = None) -> DistillationData:
    """Datasets for the student with and without its teacher. Validation images are not
    augmented, so the teacher's validation logits are computed once, not every epoch. The
    training images are augmented: the teacher runs on them online (``teacher_passes`` 0) or
    on ``teacher_passes`` fixed augmented passes computed once (see _cached_teacher_passes).
    ``known``: outputs this teacher already gave under ``teacher_key``, used instead of
    running it again (``teacher_key`` names the outputs returned)."""
    if known is not None and known.key != teacher_key:
        raise ValueError("the known teacher outputs were made under another key")
    val_targets = dataset.target_matrix("val")
    augment = Augmentation.from_params(augmentation)
    plain_val = _validation_batches(shards, "student", batch_size, seed)
    if known is not None:
        teacher_logits = known.val
        reused = min(len(known.passes), teacher_passes)
        print(f"teacher: logits on val and {reused} augmented pass(es) of {teacher_passes} read "
              "from the student stage", flush=True)
    else:
        teacher_logits = predict_logits(teacher, _validation_batches(
            shards, "teacher", batch_size, seed).map(lambda x, y: x))
    logits = tf.data.Dataset.from_tensor_slices(teacher_logits).batch(batch_size)
    distill_val = tf.data.Dataset.zip((plain_val, logits)).map(
        lambda student, teacher_batch: ((student[0], {TEACHER_LOGITS: teacher_batch}), student[1]))
    pass_logits = []
    if teacher_passes:
        distill_train, steps, pass_logits = _cached_teacher_passes(
            shards, teacher, teacher_passes, batch_size, seed, augment, shuffle_buffer,
            known.passes if known is not None else [])
    else:
        distill_train, steps = _training_batches(shards, ["student", "teacher"], batch_size,
                                                 seed, augment, shuffle_buffer), None
    plain_train = _training_batches(shards, ["student"], batch_size, seed, augment, shuffle_buffer)
    return DistillationData(plain_train, plain_val, distill_train, distill_val,
                            plain_val.map(lambda x, y: x), val_targets,
                            TeacherOutputs(teacher_key, teacher_logits, pass_logits), steps)
