"""Layer-wise (discriminative) learning rates (teacher/student ``lr_layer_decay``).

The backbone's weighted layers are grouped by the block their name gives (``stem``,
``block0`` ... ``block20``, ``head`` for a Lite model; ``block1a`` ... ``top`` for
keras.applications' EfficientNets). The group next to the classifier trains at ``decay`` times
the phase's learning rate, the one below it at ``decay²``, and so on down to the stem; the
classifier trains at the full rate. Pretrained early layers, which hold generic features, move
less than the top ones.

``LayerwiseAdamW`` is Keras' AdamW with a learning-rate multiplier per variable. Adam's moments
do not depend on the learning rate, so scaling a variable's whole step (decoupled weight decay
included) by m is exactly AdamW at m times the rate for that variable.
"""
from __future__ import annotations

import tensorflow as tf

from stages.common.models.architectures import weighted_backbone_layers

keras = tf.keras


def layerwise_multipliers(model: keras.Model, decay: float) -> dict[str, float]:
    """Variable name -> its learning-rate multiplier, for every backbone variable (the
    classifier's are left out: they train at the full rate)."""
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"a layer-wise decay is in (0, 1], not {decay}")
    group_of = {layer: layer.name.split("_")[0] for layer in weighted_backbone_layers(model)}
    groups = list(dict.fromkeys(group_of.values()))  # in graph order, each once
    depth = {group: len(groups) - index for index, group in enumerate(groups)}
    return {variable.name: decay ** depth[group]
            for layer, group in group_of.items() for variable in layer.weights}


class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose step for a variable named in ``multipliers`` is scaled by its multiplier."""

    def __init__(self, multipliers: dict[str, float], **kwargs):
        super().__init__(**kwargs)
        self._multiplier_by_name = dict(multipliers)
        self._multiplier_by_key: dict = {}

    def build(self, var_list):
        super().build(var_list)
        self._multiplier_by_key = {self._var_key(variable):
                                   self._multiplier_by_name.get(variable.name, 1.0)
                                   for variable in var_list}

    def _multiplier(self, variable) -> float:
        return self._multiplier_by_key.get(self._var_key(variable), 1.0)

    def _use_weight_decay(self, variable):
        # a scaled variable's weight decay is applied in update_step, scaled with its step
        return super()._use_weight_decay(variable) and self._multiplier(variable) == 1.0

    def update_step(self, gradient, variable):
        multiplier = self._multiplier(variable)
        if multiplier == 1.0:
            return super().update_step(gradient, variable)
        before = tf.identity(variable)
        super().update_step(gradient, variable)
        scaled = before + multiplier * (variable - before)
        if self.weight_decay is not None and super()._use_weight_decay(variable):
            rate = tf.cast(self.learning_rate, variable.dtype) * multiplier
            scaled -= before * tf.cast(self.weight_decay, variable.dtype) * rate
        variable.assign(scaled)

    def get_config(self):
        return {**super().get_config(), "multipliers": self._multiplier_by_name}
