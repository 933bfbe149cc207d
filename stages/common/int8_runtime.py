"""Running the exported INT8 model as the phone does (LiteRT interpreter, no TensorFlow).

Input: the letterboxed RGB uint8 pixels, unchanged (the model's input quantisation, scale 1/128
and zero point 127, is the normalisation). Output: int8 quantised logits q; the logit is
``(q - zero_point) * scale`` and the probability its sigmoid. A class is predicted when its
probability is >= its threshold; since the sigmoid is increasing, that is the same as
``q >= q_threshold`` with ``q_threshold`` the smallest int8 whose probability reaches the
threshold (128 if none does: the class is never predicted). Probabilities are read from one
256-entry table computed in float64, so every consumer gets identical numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError

INT8_VALUES = np.arange(-128, 128)
NEVER = 128  # an int8 threshold no int8 value reaches


def probability_table(scale: float, zero_point: int) -> np.ndarray:
    """Sigmoid of the dequantised logit for each int8 value, indexed by q + 128."""
    logits = (INT8_VALUES.astype(np.float64) - zero_point) * float(scale)
    return 1.0 / (1.0 + np.exp(-logits))


def int8_threshold(threshold: float, scale: float, zero_point: int) -> int:
    reached = np.nonzero(probability_table(scale, zero_point) >= threshold)[0]
    return int(INT8_VALUES[reached[0]]) if reached.size else NEVER


@dataclass
class Int8Model:
    path: Path
    interpreter: object
    input_index: int
    output_index: int
    input_size: int
    input_dtype: type
    input_scale: float
    input_zero_point: int
    output_dtype: type
    output_scale: float
    output_zero_point: int
    num_classes: int

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> "Int8Model":
        from ai_edge_litert.interpreter import Interpreter

        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: model file not found")
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
        except (ValueError, RuntimeError) as error:
            raise UserError(f"{path}: not a loadable TFLite model: {error}") from None
        interpreter.allocate_tensors()
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        in_scale, in_zero = inp["quantization"]
        out_scale, out_zero = out["quantization"]
        return cls(path, interpreter, inp["index"], out["index"], int(inp["shape"][1]),
                   inp["dtype"], float(in_scale), int(in_zero), out["dtype"], float(out_scale),
                   int(out_zero), int(out["shape"][-1]))

    def raw_outputs(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """int8 outputs (N x C) for letterboxed uint8 images (N x S x S x 3)."""
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"expected N x {self.input_size} x {self.input_size} x 3 uint8, "
                             f"got {pixels.dtype} {pixels.shape}")
        outputs = []
        current = None
        for start in range(0, len(pixels), batch_size):
            batch = pixels[start:start + batch_size]
            if current != len(batch):
                self.interpreter.resize_tensor_input(self.input_index, list(batch.shape))
                self.interpreter.allocate_tensors()
                current = len(batch)
            self.interpreter.set_tensor(self.input_index, batch)
            self.interpreter.invoke()
            outputs.append(self.interpreter.get_tensor(self.output_index).copy())
        return np.concatenate(outputs) if outputs else np.zeros((0, self.num_classes), np.int8)

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        return probability_table(self.output_scale, self.output_zero_point)[raw.astype(np.int64) + 128]

    def thresholds_int8(self, thresholds) -> list[int]:
        return [int8_threshold(t, self.output_scale, self.output_zero_point) for t in thresholds]

    def float_tensors(self) -> list[str]:
        return [d["name"] for d in self.interpreter.get_tensor_details()
                if np.dtype(d["dtype"]) in (np.float32, np.float16, np.float64)]

    def operators(self) -> list[str]:
        return sorted({op["op_name"] for op in self.interpreter._get_ops_details()})
