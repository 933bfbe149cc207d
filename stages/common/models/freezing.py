"""Which layers train in each phase: the head alone, then the top of the backbone (the
fine-tuning policy shared by the teacher and the student)."""
from __future__ import annotations

import math

import tensorflow as tf

from stages.common.models.architectures import is_head, weighted_backbone_layers

keras = tf.keras
layers = tf.keras.layers


def set_trainable(model: keras.Model, phase: str, unfreeze_fraction: float = 0.0,
                  freeze_batchnorm: bool = True) -> int:
    """Freeze for a phase; returns how many backbone layers are trainable.

    ``head``: only the classifier head trains. ``finetune``: the last
    ``ceil(unfreeze_fraction * N)`` of the N weighted backbone layers train too, except
    BatchNormalization layers when ``freeze_batchnorm`` (in Keras 2 a frozen BatchNormalization
    runs in inference mode, keeping its moving statistics). Recompile the model after calling
    this.
    """
    if phase not in ("head", "finetune"):
        raise ValueError(f"unknown phase {phase!r}")
    model.trainable = True
    backbone = weighted_backbone_layers(model)
    if phase == "head":
        count = 0
    else:
        count = math.ceil(unfreeze_fraction * len(backbone))
    unfrozen = set(id(layer) for layer in backbone[len(backbone) - count:]) if count else set()
    trainable_count = 0
    for layer in model.layers:
        if is_head(layer):
            layer.trainable = True
        elif id(layer) in unfrozen and not (
                freeze_batchnorm and isinstance(layer, layers.BatchNormalization)):
            layer.trainable = True
            trainable_count += 1
        else:
            layer.trainable = False
    return trainable_count
