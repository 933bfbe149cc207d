"""The shipped model's speed: INT8 against float32 TFLite latency per image (LiteRT, batch 1) at
1 and 2 threads with the file sizes, and the C app (LiteRT C API) against the Python interpreter
on a packaged model."""
from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError
from stages.common.data.image_files import encode_ppm
from stages.common.data.preprocessing import normalize_student
from stages.common.deployment.inference_config import load_inference_config
from stages.common.models.architectures import build_student
from stages.common.models.fake_quant import calibrate_activation_ranges, quantize_student
from stages.common.quantization.int8_export import (
    convert_to_float,
    convert_to_int8,
    pin_input_range,
)

C_APP_DIR = Path(__file__).resolve().parents[2] / "c_reference"  # stages/c_reference


def _latency_ms(model_content: bytes, threads: int, runs: int) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content, num_threads=threads)
    interpreter.allocate_tensors()
    (details,) = interpreter.get_input_details()
    image = np.random.default_rng(0).integers(0, 256, details["shape"]).astype(details["dtype"])
    interpreter.set_tensor(details["index"], image)
    for _ in range(5):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def tflite_int8_vs_float(size: int, classes: int, runs: int = 50) -> dict:
    """The student (random weights; latency and size do not depend on them) as float32 TFLite
    and as the pipeline's full-integer INT8 export."""
    student = build_student(classes, size, dropout=0.0)  # inference only: dropout is inert
    rng = np.random.default_rng(0)
    calibration = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    float_model = convert_to_float(student)
    qat_model = quantize_student(student)
    calibrate_activation_ranges(student, qat_model, [normalize_student(calibration)])
    pin_input_range(qat_model)
    int8_model = convert_to_int8(qat_model, (normalize_student(image) for image in calibration))
    result = {"float_bytes": len(float_model), "int8_bytes": len(int8_model),
              "size_ratio": round(len(int8_model) / len(float_model), 3)}
    for threads in (1, 2):
        float_ms, int8_ms = (
            _latency_ms(float_model, threads, runs),
            _latency_ms(int8_model, threads, runs),
        )
        result[f"threads_{threads}"] = {
            "float_ms": round(float_ms, 2),
            "int8_ms": round(int8_ms, 2),
            "ratio": round(int8_ms / float_ms, 3),
        }
    return result


def c_app_vs_python_latency(output_dir: Path, runs: int = 50, rounds: int = 5) -> dict:
    """Median model run of the packaged INT8 model in the C app and in the Python interpreter
    (both LiteRT, XNNPACK), at 1 and 2 threads: what the phone's C layer costs against the
    path the metrics were measured on.

    The two are timed in alternating rounds and the ratio is the median of the rounds' ratios:
    on a shared machine the speed drifts within minutes by more than the difference between
    them, and one C measurement followed by one Python measurement compares two moments."""
    config = load_inference_config(output_dir / "inference_config.json")
    model = (output_dir / config["model"]["file"]).read_bytes()
    size = config["input"]["height"]
    result = {"rounds": rounds, "runs_per_round": runs}
    with tempfile.TemporaryDirectory(prefix="benchmark_c_") as folder:
        folder = Path(folder)
        build = subprocess.run(["make", "-s", "-C", str(C_APP_DIR), f"OUT={folder}",
                                f"PYTHON={sys.executable}"], capture_output=True, text=True)
        if build.returncode != 0:
            raise UserError(f"the C app does not build:\n{build.stdout}{build.stderr}")
        image = folder / "image.ppm"
        image.write_bytes(encode_ppm(np.random.default_rng(0).integers(0, 256, (size, size, 3),
                                                                       dtype=np.uint8)))

        def c_ms(threads: int) -> float:
            run = subprocess.run([str(folder / "classify"), "--repeat", str(runs), "--threads",
                                  str(threads), str(output_dir), str(image)],
                                 capture_output=True, text=True)
            timed = re.search(r"model run median ([0-9.]+) ms", run.stderr)
            if run.returncode != 0 or timed is None:
                raise UserError(f"the C app failed on {output_dir}:\n{run.stdout}{run.stderr}")
            return float(timed.group(1))

        for threads in (1, 2):
            pairs = [(c_ms(threads), _latency_ms(model, threads, runs)) for _ in range(rounds)]
            ratios = [c / python if python > 0 else float("nan") for c, python in pairs]
            result[f"threads_{threads}"] = {
                "c_ms": round(statistics.median(c for c, _ in pairs), 3),
                "python_ms": round(statistics.median(python for _, python in pairs), 3),
                "ratio": round(statistics.median(ratios), 3),
                "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)]}
    return {"output_dir": str(output_dir), **result}
