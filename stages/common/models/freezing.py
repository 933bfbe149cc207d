"""Which layers train in each phase: the head alone, then the top of the backbone (the
fine-tuning policy shared by the teacher and the student); and the head alone as a model of its
own, for a head phase on cached backbone features."""
from __future__ import annotations

import math

import tensorflow as tf

from stages.common.core.errors import UserError
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


def head_on_features(model: keras.Model, key: str) -> tuple[keras.Model, keras.Model]:
    """(the backbone up to the pooled features, the head on those features), sharing the
    model's layers: training the second trains the model's head.

    Exact for the head phase, where the whole backbone is frozen: a frozen backbone computes the
    same features at training time as in inference (BatchNormalization frozen runs in inference
    mode) provided it holds no dropout. keras.applications' EfficientNets drop whole blocks at
    training time (stochastic depth): refused, naming ``key``."""
    dropping = [layer.name for layer in model.layers
                if isinstance(layer, layers.Dropout) and not is_head(layer)]
    if dropping:
        raise UserError(f"{key}: the head cannot train on cached features of {model.name}: its "
                        f"backbone drops blocks at training time ({dropping[0]} and "
                        f"{len(dropping) - 1} more), so its features are not fixed; set {key} "
                        "to 0, or use an EfficientNet-Lite (efficientnet_lite2)")
    pooled = next(layer for layer in model.layers if is_head(layer)).output
    extractor = keras.Model(model.inputs, pooled, name=f"{model.name}_features")
    features = keras.Input(pooled.shape[1:], name="backbone_features")
    logits = model.get_layer("logits")(model.get_layer("top_dropout")(features))
    return extractor, keras.Model(features, logits, name=f"{model.name}_head")
