"""Quantization-aware training of the student and its full-integer TFLite export.

QAT: ``tfmot.quantization.keras.quantize_model`` on the whole student graph, fine-tuned with the
distillation loss at a low learning rate. BatchNormalization stays in inference mode during QAT
(its statistics are kept; small-batch statistics would shift the model the quantisers are
learning). The QAT model is saved as weights and rebuilt (student graph -> quantize_model ->
load_weights): a quantised Keras model does not survive Keras serialisation.

Export: the converter gets the QAT model traced at a batch of one, a representative dataset
passed through the exact deployment preprocessing (letterbox, then ``(x - 127) / 128``), builtin
INT8 ops only, uint8 input and int8 output. Before conversion the input quantiser's range is set to
[-127/128, 1.0], the exact image of [0, 255] under the normalisation, so the exported input
quantisation is scale 1/128 and zero point 127: the phone feeds the raw letterboxed bytes.
``check_int8_model`` verifies that and fails loudly otherwise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

import tensorflow as tf
import tensorflow_model_optimization as tfmot

from stages.common.core.progress import Heartbeat, Progress
from stages.common.core.errors import UserError, way_back
from stages.common.models.architectures import build_student
from stages.common.data.preprocessing import STUDENT_SCALE, STUDENT_ZERO_POINT

keras = tf.keras
INPUT_RANGE = (-STUDENT_ZERO_POINT / STUDENT_SCALE, (255.0 - STUDENT_ZERO_POINT) / STUDENT_SCALE)
EXPECTED_INPUT_SCALE = 1.0 / STUDENT_SCALE
EXPECTED_INPUT_ZERO_POINT = int(STUDENT_ZERO_POINT)


class ExportError(UserError):
    """The exported model does not meet the deployment contract."""


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


def pin_input_range(qat_model: keras.Model) -> tuple[float, float]:
    """Set the input quantiser to [-127/128, 1.0]; returns the range it had learnt."""
    # tfmot does not export the QuantizeLayer class publicly; it is the first layer after the input
    layer = next((l for l in qat_model.layers if type(l).__name__ == "QuantizeLayer"), None)
    if layer is None:
        raise ExportError("the QAT model has no input QuantizeLayer")
    low = next(v for v in layer.weights if v.name.endswith("_min:0"))
    high = next(v for v in layer.weights if v.name.endswith("_max:0"))
    learnt = (float(low.numpy()), float(high.numpy()))
    low.assign(INPUT_RANGE[0])
    high.assign(INPUT_RANGE[1])
    return learnt


def convert_to_int8(qat_model: keras.Model, representative: Iterable[np.ndarray],
                    stage: str = "export") -> bytes:
    """Full-integer TFLite: builtin INT8 ops, uint8 input, int8 output (logits), batch of 1.

    The signature is traced at ``[1, S, S, 3]``: a Keras model converts with a dynamic batch
    (-1), which a compiled LiteRT model cannot size its buffers for until it is resized, and
    which phone delegates handle badly; the phone classifies one image at a time anyway."""
    size = int(qat_model.input_shape[1])
    serve = tf.function(lambda image: qat_model(image, training=False))
    signature = serve.get_concrete_function(tf.TensorSpec([1, size, size, 3], tf.float32,
                                                          name="image"))
    # The converter saves the function with this object as a SavedModel and reads it back.
    # Given the Keras model, it serialises every layer too (about 40 s of a 55 s conversion of
    # the Lite1 student); a module holding only the variables gives the same flatbuffer, byte
    # for byte, in a quarter of the time.
    variables = tf.Module()
    variables.tracked = list(qat_model.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([signature], variables)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    samples = list(representative)
    def representative_dataset():
        # the converter asks for samples only after its own work: start counting here
        calibration = Progress(f"{stage}: calibrating on representative images", len(samples))
        for sample in samples:
            yield [np.asarray(sample, dtype=np.float32)[None]]
            calibration.advance()

    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8
    with Heartbeat(f"{stage}: TFLite conversion"):
        return converter.convert()


def convert_to_float(keras_model: keras.Model) -> bytes:
    """Float32 TFLite of the same model, for size and latency comparisons."""
    return tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
