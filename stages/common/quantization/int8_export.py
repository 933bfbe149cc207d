"""Seed section 5: INT8 TFLite export with the deployment contract checked, and its fidelity."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import numpy as np

from stages.common.quantization.int8_runtime import Int8Model, kernel_path_agreement
from stages.common.evaluation.metrics import f1_macro, sigmoid
from stages.common.data.preprocessing import normalize_student
from stages.common.core.progress import Progress
from stages.common.quantization.fake_quant import (EXPECTED_INPUT_SCALE, EXPECTED_INPUT_ZERO_POINT,
                                                   ExportError, convert_to_int8, pin_input_range)


def representative_indices(count: int, available: int, seed: int) -> np.ndarray:
    """A seeded choice of ``count`` training images (all of them if there are fewer)."""
    order = np.random.default_rng(seed).permutation(available)
    return np.sort(order[:min(count, available)])


def export_int8(qat_model, representative_pixels: np.ndarray, out_path: str | Path) -> dict:
    """Convert, write, and check the model; returns facts for the export report."""
    learnt = pin_input_range(qat_model)
    started = time.monotonic()
    flatbuffer = convert_to_int8(qat_model, (normalize_student(p) for p in representative_pixels))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(flatbuffer)
    facts = check_int8_model(Int8Model.load(out_path))
    return {**facts, "learnt_input_range": list(learnt), "conversion_s": round(time.monotonic() - started, 1),
            "file_bytes": len(flatbuffer), "representative_samples": int(len(representative_pixels))}


def check_int8_model(model: Int8Model) -> dict:
    """The deployment contract; raises ExportError listing every violation."""
    problems = []
    if np.dtype(model.input_dtype) != np.uint8:
        problems.append(f"input dtype is {np.dtype(model.input_dtype)}, not uint8")
    if model.input_scale != EXPECTED_INPUT_SCALE or model.input_zero_point != EXPECTED_INPUT_ZERO_POINT:
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
    int8_parts, float_parts = [np.zeros((0, int8_model.num_classes))], [np.zeros((0, int8_model.num_classes))]
    progress = Progress("export: INT8 vs float on a split", len(targets))
    for pixels in pixel_chunks:
        int8_parts.append(int8_model.probabilities(int8_model.raw_outputs(pixels)))
        float_parts.append(sigmoid(np.concatenate([
            qat_model(normalize_student(pixels[i:i + batch_size]), training=False).numpy()
            for i in range(0, len(pixels), batch_size)])))
        progress.advance(len(pixels))
    int8_probabilities, float_probabilities = np.concatenate(int8_parts), np.concatenate(float_parts)
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
