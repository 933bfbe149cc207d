"""Quantization-aware training: the student graph with fake quantisation, and its weights.

QAT: ``tfmot.quantization.keras.quantize_model`` on the whole student graph, fine-tuned with the
distillation loss at a low learning rate. BatchNormalization stays in inference mode during QAT
(its statistics are kept; small-batch statistics would shift the model the quantisers are
learning). The QAT model is saved as weights and rebuilt (student graph -> quantize_model ->
load_weights): a quantised Keras model does not survive Keras serialisation. Its conversion to a
full-integer TFLite model is ``int8_export``'s.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from stages.common.core.errors import UserError, way_back
from stages.common.models.architectures import build_student

keras = tf.keras


def quantize_student(student: keras.Model) -> keras.Model:
    """Wrap the whole student for QAT; BatchNormalization layers stay in inference mode."""
    quantized = tfmot.quantization.keras.quantize_model(student)
    for layer in quantized.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, keras.layers.BatchNormalization):
            layer.trainable = False
    return quantized


QAT_WEIGHTS = "weights"  # TensorFlow checkpoint prefix: HDF5 cannot hold a QAT model's names


def save_qat_weights(model: keras.Model, directory: str | Path) -> None:
    model.save_weights(str(Path(directory) / QAT_WEIGHTS))


def rebuild_qat_student(num_classes: int, input_size: int, dropout: float,
                        directory: str | Path, pooling: str = "avg") -> keras.Model:
    """Student graph -> quantize_model -> the saved QAT weights (all of them must match)."""
    with tfmot.quantization.keras.quantize_scope():
        model = quantize_student(build_student(num_classes, input_size, dropout,
                                               pooling=pooling))
        try:
            model.load_weights(str(Path(directory) / QAT_WEIGHTS)).assert_existing_objects_matched()
        except Exception as error:  # TensorFlow raises many types for a damaged checkpoint
            raise UserError(f"{Path(directory) / QAT_WEIGHTS}.*: the QAT checkpoint cannot be "
                            f"loaded ({type(error).__name__}: {str(error)[:300]}); "
                            f"{way_back(directory, 'qat')}") from None
    return model


def calibrate_activation_ranges(float_model: keras.Model, qat_model: keras.Model,
                                batches: Iterable[np.ndarray]) -> int:
    """Start every activation quantiser at the range its tensor really has; returns how many.

    tfmot's activation quantisers start at [-6, 6] and follow the batch ranges with an EMA of
    decay 0.999, so they need thousands of steps to settle; a short QAT on a small dataset would
    spend it clipping activations. The quantiser of ``quant_<layer>`` (variables ``output_*`` or
    ``post_activation_*``) covers the output of ``<layer>`` in the float model, so we measure those
    outputs on calibration images and assign min(observed, 0) and max(observed, 0), as tfmot
    itself keeps 0 inside every range.
    """
    ranges: dict[str, dict[str, tf.Variable]] = {}
    for variable in qat_model.weights:
        scope, _, leaf = variable.name.rpartition("/")
        for kind in ("output", "post_activation"):
            for end in ("min", "max"):
                if leaf == f"{kind}_{end}:0" and scope.startswith("quant_"):
                    ranges.setdefault(scope[len("quant_"):], {})[end] = variable
    names = sorted(ranges)
    probe = keras.Model(float_model.input, [float_model.get_layer(n).output for n in names])
    low = {n: np.inf for n in names}
    high = {n: -np.inf for n in names}
    for batch in batches:
        for name, output in zip(names, probe(batch, training=False)):
            low[name] = min(low[name], float(tf.reduce_min(output)))
            high[name] = max(high[name], float(tf.reduce_max(output)))
    for name in names:
        ranges[name]["min"].assign(min(low[name], 0.0))
        ranges[name]["max"].assign(max(high[name], 0.0))
    return len(names)
