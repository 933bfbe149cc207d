"""tf.data input pipeline: letterboxed images augmented on the fly, seeded.

The images come letterboxed already, from the sharded files of the shards stage (``shards``:
streamed, bounded memory) or, for small data, from arrays (``letterbox_split`` +
``in_memory_source``); epochs only decode, augment and normalise.

Augmentation (training only) draws one set of random parameters per example and applies the
same parameters to every "view" of it: in distillation the student's 240 px letterbox and the
teacher's 300 px letterbox of the same image get the same flip, rotation, zoom and colour
change, expressed relative to the canvas so they describe the same augmented image.
- colour: brightness shift, contrast and saturation factors, applied to the image content only
  (the letterbox border stays black, as on the phone);
- geometry: horizontal flip, rotation by up to ``random_rotation_factor`` of a full turn, zoom
  by up to ``random_zoom_factor`` in or out, about the canvas centre, bilinear, black fill.
Randomness is reproducible: the shuffle and the per-example parameters come from ``seed`` and
change every epoch (``reshuffle_each_iteration`` / ``rerandomize_each_iteration``).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tensorflow as tf

from .dataset import IMAGES_FOLDER, Record
from .progress import Progress
from .preprocessing import NORMALIZERS, content_box, letterbox, load_image


@dataclass(frozen=True)
class Augmentation:
    flip: bool = False
    rotation: float = 0.0  # fraction of a full turn, both directions
    zoom: float = 0.0  # relative, in and out
    brightness: float = 0.0  # shift in units of the full range [0, 1]
    contrast: float = 0.0
    saturation: float = 0.0

    @classmethod
    def from_params(cls, params: dict) -> "Augmentation":
        jitter = params["color_jitter"]
        return cls(params["random_flip_horizontal"], params["random_rotation_factor"],
                   params["random_zoom_factor"], jitter["brightness"], jitter["contrast"],
                   jitter["saturation"])


def letterbox_split(dataset_dir: str | Path, records: list[Record], size: int,
                    workers: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Decode and letterbox every record once; returns (pixels, content boxes)."""
    images_dir = Path(dataset_dir) / IMAGES_FOLDER

    def one(record: Record) -> np.ndarray:
        return letterbox(load_image(images_dir / record.name), size)

    pixels = np.zeros((len(records), size, size, 3), dtype=np.uint8)
    progress = Progress(f"decoding and letterboxing to {size} px", len(records))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, boxed in enumerate(pool.map(one, records)):
            pixels[i] = boxed
            progress.advance()
    boxes = np.array([content_box(r.height, r.width, size) for r in records],
                     dtype=np.int32).reshape(-1, 4)
    return pixels, boxes


def _sample_parameters(seed, config: Augmentation) -> dict:
    u = tf.random.stateless_uniform([6], seed=seed, dtype=tf.float32)

    def symmetric(value, amount):
        return (2.0 * value - 1.0) * amount

    return {
        "flip": tf.logical_and(tf.constant(config.flip), u[0] < 0.5),
        "angle": symmetric(u[1], config.rotation * 2.0 * math.pi),
        "scale": 1.0 + symmetric(u[2], config.zoom),
        "brightness": symmetric(u[3], config.brightness),
        "contrast": 1.0 + symmetric(u[4], config.contrast),
        "saturation": 1.0 + symmetric(u[5], config.saturation),
    }


def _content_mask(box, size: int):
    positions = tf.range(size)
    rows = tf.logical_and(positions >= box[0], positions < box[0] + box[2])
    cols = tf.logical_and(positions >= box[1], positions < box[1] + box[3])
    return tf.cast(tf.logical_and(rows[:, None], cols[None, :]), tf.float32)[..., None]


def _geometry_transform(parameters: dict, size: int):
    """Projective transform mapping output pixel (x, y) to input pixel, about the centre."""
    centre = (size - 1) / 2.0
    cos, sin = tf.cos(parameters["angle"]), tf.sin(parameters["angle"])
    flip = tf.where(parameters["flip"], -1.0, 1.0)
    inverse_scale = 1.0 / parameters["scale"]
    a, b = cos * flip * inverse_scale, -sin * inverse_scale
    d, e = sin * flip * inverse_scale, cos * inverse_scale
    return tf.stack([a, b, centre - a * centre - b * centre,
                     d, e, centre - d * centre - e * centre, 0.0, 0.0])


def augment_view(image, box, parameters: dict):
    """Augment one S x S x 3 float32 image in [0, 255] with already drawn parameters."""
    size = image.shape[0]
    x = image / 255.0 + parameters["brightness"]
    x = tf.image.adjust_contrast(x, parameters["contrast"])
    x = tf.image.adjust_saturation(x, parameters["saturation"])
    x = tf.clip_by_value(x, 0.0, 1.0) * 255.0 * _content_mask(box, size)
    transformed = tf.raw_ops.ImageProjectiveTransformV3(
        images=x[None], transforms=_geometry_transform(parameters, size)[None],
        output_shape=tf.constant([size, size]), fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
    return transformed[0]


def in_memory_source(pixels: list[np.ndarray], boxes: list[np.ndarray],
                     targets: np.ndarray) -> tf.data.Dataset:
    """The element structure of ``Shards.records`` from arrays (one per view), for small data."""
    return tf.data.Dataset.from_tensor_slices((tuple(pixels), tuple(boxes),
                                               targets.astype(np.float32)))


def make_dataset(source: tf.data.Dataset, normalizers: list[str], batch_size: int, *,
                 training: bool, seed: int, augmentation: Augmentation | None = None,
                 shuffle_buffer: int = 0) -> tf.data.Dataset:
    """Batches of (inputs, targets) from elements ``((pixels per view), (boxes per view),
    targets)``; inputs is one tensor per view (a tuple if several), normalised for its model
    ("student" or "teacher"). Training augments every example (one parameter set shared by its
    views); ``shuffle_buffer`` shuffles here (sharded sources shuffle before decoding)."""
    normalizer_functions = [NORMALIZERS[name] for name in normalizers]

    def finish(images):
        normalised = tuple(norm(image) for norm, image in zip(normalizer_functions, images))
        return normalised if len(normalised) > 1 else normalised[0]

    data = source
    if training:
        if shuffle_buffer:
            data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        config = augmentation or Augmentation()

        def augment(element, random):
            images, view_boxes, target = element
            parameters = _sample_parameters(tf.stack([random, tf.constant(0, tf.int64)]), config)
            augmented = [augment_view(tf.cast(image, tf.float32), box, parameters)
                         for image, box in zip(images, view_boxes)]
            return finish(augmented), target

        data = tf.data.Dataset.zip((data, randoms)).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        data = data.map(lambda images, _, target: (finish([tf.cast(i, tf.float32) for i in images]),
                                                   target),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
