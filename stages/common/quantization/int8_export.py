"""Full-integer TFLite export under the deployment contract, for both INT8 models, and its
fidelity against the float model.

The converter gets the model traced at a batch of one, a representative dataset passed through
the exact deployment preprocessing (letterbox, then ``(x - 127) / 128``), builtin INT8 ops only,
uint8 input and int8 output. The input quantisation must come out as scale 1/128 and zero point
127, so that the phone feeds the raw letterboxed bytes:
- QAT model: its input quantiser's range is set to [-127/128, 1.0], the exact image of [0, 255]
  under the normalisation, before conversion (``pin_input_range``).
- PTQ model (the float student, as Model Maker ships it): the converter calibrates the input from
  the representative images' own range. Two pixels of the first representative image are set to
  0 and 255, so that this range is exactly [-127/128, 1] on any dataset
  (``full_range_representative``).
``check_int8_model`` verifies the contract and fails loudly otherwise.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf

from stages.common.core.errors import UserError
from stages.common.core.progress import Heartbeat, Progress
from stages.common.data.preprocessing import STUDENT_SCALE, STUDENT_ZERO_POINT, normalize_student
from stages.common.quantization.int8_runtime import Int8Model, kernel_path_agreement
from stages.common.scoring.metrics import f1_macro, sigmoid

keras = tf.keras
INPUT_RANGE = (-STUDENT_ZERO_POINT / STUDENT_SCALE, (255.0 - STUDENT_ZERO_POINT) / STUDENT_SCALE)
EXPECTED_INPUT_SCALE = 1.0 / STUDENT_SCALE
EXPECTED_INPUT_ZERO_POINT = int(STUDENT_ZERO_POINT)


class ExportError(UserError):
    """The exported model does not meet the deployment contract."""


def representative_indices(count: int, available: int, seed: int) -> np.ndarray:
    """A seeded choice of ``count`` training images (all of them if there are fewer)."""
    order = np.random.default_rng(seed).permutation(available)
    return np.sort(order[:min(count, available)])


def full_range_representative(pixels: np.ndarray) -> np.ndarray:
    """The representative images, with two pixels of the first one at 0 and 255 (see above)."""
    pixels = np.array(pixels, dtype=np.uint8, copy=True)
    pixels[0, 0, 0] = 0
    pixels[0, -1, -1] = 255
    return pixels


def pin_input_range(qat_model: keras.Model) -> tuple[float, float]:
    """Set the input quantiser to [-127/128, 1.0]; returns the range it had learnt."""
    # tfmot does not export the QuantizeLayer class publicly; it is the first layer after the input
    layer = next((candidate for candidate in qat_model.layers
                  if type(candidate).__name__ == "QuantizeLayer"), None)
    if layer is None:
        raise ExportError("the QAT model has no input QuantizeLayer")
    low = next(v for v in layer.weights if v.name.endswith("_min:0"))
    high = next(v for v in layer.weights if v.name.endswith("_max:0"))
    learnt = (float(low.numpy()), float(high.numpy()))
    low.assign(INPUT_RANGE[0])
    high.assign(INPUT_RANGE[1])
    return learnt


def convert_to_int8(model: keras.Model, representative: Iterable[np.ndarray],
                    stage: str = "export") -> bytes:
    """Full-integer TFLite: builtin INT8 ops, uint8 input, int8 output (logits), batch of 1.

    The signature is traced at ``[1, S, S, 3]``: a Keras model converts with a dynamic batch
    (-1), which a compiled LiteRT model cannot size its buffers for until it is resized, and
    which phone delegates handle badly; the phone classifies one image at a time anyway."""
    size = int(model.input_shape[1])
    serve = tf.function(lambda image: model(image, training=False))
    signature = serve.get_concrete_function(tf.TensorSpec([1, size, size, 3], tf.float32,
                                                          name="image"))
    # The converter saves the function with this object as a SavedModel and reads it back.
    # Given the Keras model, it serialises every layer too (about 40 s of a 55 s conversion of
    # the Lite1 student); a module holding only the variables gives the same flatbuffer, byte
    # for byte, in a quarter of the time.
    variables = tf.Module()
    variables.tracked = list(model.variables)
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


def _write_int8(model: keras.Model, representative_pixels: np.ndarray, out_path: str | Path,
                stage: str, facts_of_model: dict) -> dict:
    """Convert, write and check one model; the facts for its export report, ``facts_of_model``
    after the contract's."""
    started = time.monotonic()
    flatbuffer = convert_to_int8(model, (normalize_student(p) for p in representative_pixels),
                                 stage=stage)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(flatbuffer)
    facts = check_int8_model(Int8Model.load(out_path))
    return {**facts, **facts_of_model, "conversion_s": round(time.monotonic() - started, 1),
            "file_bytes": len(flatbuffer),
            "representative_samples": int(len(representative_pixels))}


def export_int8(qat_model: keras.Model, representative_pixels: np.ndarray,
                out_path: str | Path) -> dict:
    """The shipped model: the QAT model with its input range pinned, converted and checked."""
    learnt = pin_input_range(qat_model)
    return _write_int8(qat_model, representative_pixels, out_path, stage="export",
                       facts_of_model={"learnt_input_range": list(learnt)})


def export_ptq_int8(float_student: keras.Model, representative_pixels: np.ndarray,
                    out_path: str | Path) -> dict:
    """The baseline: the float student converted by post-training quantisation, and checked."""
    return _write_int8(float_student, full_range_representative(representative_pixels), out_path,
                       stage="ptq_baseline", facts_of_model={})


def check_int8_model(model: Int8Model) -> dict:
    """The deployment contract; raises ExportError listing every violation."""
    problems = []
    if np.dtype(model.input_dtype) != np.uint8:
        problems.append(f"input dtype is {np.dtype(model.input_dtype)}, not uint8")
    if (
        model.input_scale != EXPECTED_INPUT_SCALE
        or model.input_zero_point != EXPECTED_INPUT_ZERO_POINT
    ):
        problems.append(f"input quantisation is scale {model.input_scale!r}, zero point "
                        f"{model.input_zero_point}, not 1/128 and 127: raw letterboxed pixels "
                        "would not equal (x - 127) / 128")
    if np.dtype(model.output_dtype) != np.int8:
        problems.append(f"output dtype is {np.dtype(model.output_dtype)}, not int8")
    phone_input = [1, model.input_size, model.input_size, 3]
    if model.input_signature != phone_input:
        problems.append(f"input signature is {model.input_signature}, not {phone_input}: "
                        "inference_config.json promises one image per run, with no resizing")
    if model.output_signature != [1, model.num_classes]:
        problems.append(f"output signature is {model.output_signature}, not "
                        f"{[1, model.num_classes]}")
    floats = model.float_tensors()
    if floats:
        problems.append(f"{len(floats)} float tensor(s) left in the graph, e.g. {floats[:3]}")
    if problems:
        raise ExportError(f"{model.path}: the INT8 export breaks the deployment contract:\n  "
                          + "\n  ".join(problems))
    return {"input": {"dtype": "uint8", "scale": model.input_scale,
                      "zero_point": model.input_zero_point, "size": model.input_size,
                      "shape": model.input_signature},
            "output": {"dtype": "int8", "scale": model.output_scale,
                       "zero_point": model.output_zero_point, "classes": model.num_classes,
                       "shape": model.output_signature},
            "operators": model.operators()}


def kernel_paths_at_half(outputs: dict[str, np.ndarray], adopted: Int8Model) -> dict:
    """Every other CPU kernel path's int8 outputs against the adopted model's, on the same
    images, decisions cut at probability 0.5 (the thresholds are tuned later, on the adopted
    path's outputs)."""
    at_half = adopted.thresholds_int8([0.5] * adopted.num_classes)
    return {name: kernel_path_agreement(outputs[adopted.kernels], raw, at_half)
            for name, raw in outputs.items() if name != adopted.kernels}


def fidelity(int8_model: Int8Model, qat_model, pixel_chunks: Iterable[np.ndarray],
             targets: np.ndarray, batch_size: int = 32) -> dict:
    """INT8 (LiteRT) against the float QAT Keras model on the same letterboxed images, given a
    chunk at a time (bounded memory)."""
    int8_parts, float_parts = (
        [np.zeros((0, int8_model.num_classes))],
        [np.zeros((0, int8_model.num_classes))],
    )
    progress = Progress("export: INT8 vs float on a split", len(targets))
    for pixels in pixel_chunks:
        int8_parts.append(int8_model.probabilities(int8_model.raw_outputs(pixels)))
        float_parts.append(sigmoid(np.concatenate([
            qat_model(normalize_student(pixels[i:i + batch_size]), training=False).numpy()
            for i in range(0, len(pixels), batch_size)])))
        progress.advance(len(pixels))
    int8_probabilities, float_probabilities = (
        np.concatenate(int8_parts),
        np.concatenate(float_parts),
    )
    difference = np.abs(int8_probabilities - float_probabilities)
    return {
        "images": int(len(int8_probabilities)),
        "max_abs_probability_difference": float(difference.max()) if difference.size else 0.0,
        "mean_abs_probability_difference": float(difference.mean()) if difference.size else 0.0,
        "identical_decisions_at_0.5": float(np.mean((int8_probabilities >= 0.5)
                                                    == (float_probabilities >= 0.5))),
        "f1_macro_int8_at_0.5": f1_macro(targets, int8_probabilities >= 0.5),
        "f1_macro_float_qat_at_0.5": f1_macro(targets, float_probabilities >= 0.5),
    }
