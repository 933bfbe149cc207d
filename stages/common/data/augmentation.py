"""Augmentation on the fly, seeded, for training batches of one or several views.

One set of random parameters is drawn per example and applied to every "view" of it: in
distillation the student's 240 px letterbox and the teacher's 300 px letterbox of the same image
get the same flip, rotation, zoom and colour change, expressed relative to the canvas so they
describe the same augmented image.
- colour: brightness shift, contrast and saturation factors, applied to the image content only
  (the letterbox border stays black, as on the phone);
- geometry: horizontal flip, rotation by up to ``random_rotation_factor`` of a full turn, zoom
  by up to ``random_zoom_factor`` in or out, about the canvas centre, bilinear, black fill.
- mixup (``mixup_alpha`` > 0, off in the seed's recipe): each example blended with another of
  its batch after the above, labels blended alike (``mix_batch``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from stages.common.core.params_schema import AugmentationParams


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


def augmentation_parameters(uniforms, config: Augmentation) -> dict:
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


def mix_batch(views: list, targets, weights):
    """Mixup adapted to multi-label targets: example i blended with example B-1-i of its batch,
    every view alike and the label vectors alike (a class half present is a target of 0.5). A
    teacher is never told the blend through its unblended outputs: it labels the blended image
    itself, online or once per fixed pass (``input_pipeline``)."""
    def blend(x):
        w = tf.reshape(weights, [-1] + [1] * (len(x.shape) - 1))
        return w * x + (1.0 - w) * tf.reverse(x, axis=[0])

    return [blend(view) for view in views], blend(tf.cast(targets, tf.float32))


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
