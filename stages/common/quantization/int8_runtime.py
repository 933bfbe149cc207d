"""Running the exported INT8 model as the phone does (LiteRT interpreter, no TensorFlow).

Input: the letterboxed RGB uint8 pixels, unchanged (the model's input quantisation, scale 1/128
and zero point 127, is the normalisation). Output: int8 quantised logits q; the logit is
``(q - zero_point) * scale`` and the probability its sigmoid. A class is predicted when its
probability is >= its threshold; since the sigmoid is increasing, that is the same as
``q >= q_threshold`` with ``q_threshold`` the smallest int8 whose probability reaches the
threshold (128 if none does: the class is never predicted). Probabilities are read from one
256-entry table computed in float64, so every consumer gets identical numbers.

The model takes one image per run (its signature is ``[1, S, S, 3]``, as on the phone), so
images are run one at a time, never in a resized batch. Which CPU kernels run it matters: the
int8 outputs of XNNPACK (LiteRT's default, the path thresholds and metrics are measured on),
TFLite's builtin optimised kernels and its reference kernels differ by a few steps, because each
rounds its requantisation its own way.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError

INT8_VALUES = np.arange(-128, 128)
NEVER = 128  # an int8 threshold no int8 value reaches

# name -> (LiteRT interpreter op resolver, what runs the ops)
KERNEL_PATHS = {
    "xnnpack": ("AUTO", "LiteRT CPU default: the XNNPACK delegate"),
    "builtin": (
        "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
        "TFLite builtin optimised kernels, no delegate",
    ),
    "reference": ("BUILTIN_REF", "TFLite builtin reference kernels"),
}
ADOPTED_KERNEL_PATH = "xnnpack"


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
    input_signature: list[int]  # as written in the file; -1 marks a dynamic dimension
    output_signature: list[int]
    kernels: str

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None,
             kernels: str = ADOPTED_KERNEL_PATH, content: bytes | None = None) -> "Int8Model":
        """``content``: the file's bytes, already read and checked by the caller, which the
        interpreter then runs (so the file cannot change between the check and the load)."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        path = Path(path)
        if content is None and not path.is_file():
            raise UserError(f"{path}: model file not found")
        resolver = getattr(OpResolverType, KERNEL_PATHS[kernels][0])
        source = {"model_path": str(path)} if content is None else {"model_content": content}
        try:
            interpreter = Interpreter(**source, num_threads=threads,
                                      experimental_op_resolver_type=resolver)
        except (ValueError, RuntimeError) as error:
            raise UserError(f"{path}: not a loadable TFLite model: {error}") from None
        interpreter.allocate_tensors()
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        in_scale, in_zero = inp["quantization"]
        out_scale, out_zero = out["quantization"]
        return cls(path, interpreter, inp["index"], out["index"], int(inp["shape"][1]),
                   inp["dtype"], float(in_scale), int(in_zero), out["dtype"], float(out_scale),
                   int(out_zero), int(out["shape"][-1]),
                   [int(d) for d in inp["shape_signature"]],
                   [int(d) for d in out["shape_signature"]], kernels)

    def raw_outputs(self, pixels: np.ndarray) -> np.ndarray:
        """int8 outputs (N x C) for letterboxed uint8 images (N x S x S x 3), one run each."""
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"expected N x {self.input_size} x {self.input_size} x 3 uint8, "
                             f"got {pixels.dtype} {pixels.shape}")
        outputs = np.zeros((len(pixels), self.num_classes), np.int8)
        for index, image in enumerate(pixels):
            self.interpreter.set_tensor(self.input_index, image[None])
            self.interpreter.invoke()
            outputs[index] = self.interpreter.get_tensor(self.output_index)[0]
        return outputs

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        return probability_table(self.output_scale, self.output_zero_point)[
            raw.astype(np.int64) + 128
        ]

    def thresholds_int8(self, thresholds) -> list[int]:
        return [int8_threshold(t, self.output_scale, self.output_zero_point) for t in thresholds]

    def float_tensors(self) -> list[str]:
        return [d["name"] for d in self.interpreter.get_tensor_details()
                if np.dtype(d["dtype"]) in (np.float32, np.float16, np.float64)]

    def operators(self) -> list[str]:
        return sorted({op["op_name"] for op in self.interpreter._get_ops_details()})


def kernel_path_agreement(adopted: np.ndarray, other: np.ndarray, int8_thresholds) -> dict:
    """How far another kernel path's int8 outputs (N x C) are from the adopted path's, and how
    many images get another label set when both are cut at the same int8 thresholds."""
    adopted, other = adopted.astype(np.int64), other.astype(np.int64)
    difference = np.abs(adopted - other)
    thresholds = np.asarray(int8_thresholds, dtype=np.int64)
    other_sets = np.any((adopted >= thresholds) != (other >= thresholds), axis=1)
    return {
        "images": int(len(adopted)),
        "differing_outputs": float(np.mean(difference > 0)) if difference.size else 0.0,
        "max_difference": int(difference.max()) if difference.size else 0,
        "images_with_other_labels": int(other_sets.sum()),
        "differing_label_sets": float(np.mean(other_sets)) if len(adopted) else 0.0,
    }


KERNEL_OUTPUTS_FILE = "kernel_outputs_test.npz"


def save_kernel_outputs(path: Path, outputs: dict[str, np.ndarray]) -> None:
    """Each kernel path's int8 outputs on a split (N x C), by path name."""
    np.savez(path, **outputs)


def load_kernel_outputs(path: Path, adopted: np.ndarray) -> dict[str, np.ndarray] | None:
    """The outputs export saved beside the model, if it saved them for this very model and split:
    its adopted path's outputs must equal ``adopted``, computed now. None otherwise."""
    if not Path(path).is_file():
        return None
    with np.load(path) as saved:
        outputs = {name: saved[name] for name in saved.files}
    if not np.array_equal(outputs.get(ADOPTED_KERNEL_PATH), adopted):
        return None
    return outputs
