"""Inference from the five outputs alone, following inference_config.json as the phone does.

Nothing is guessed: the folder is checked against the rules of docs/output_folder_rules.md (the
C app applies the same ones): the config against its schema, the model's size and hash, tensor
sizes and quantisation against the config, and labels.txt against the config's classes, before
any image is classified. One image's problem (unreadable, undecodable, too large) is that image's
error; the others still get their results.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError, read_regular_file
from stages.common.core.hashing import bytes_sha256
from stages.common.core.label_text import forbidden_character
from stages.common.data.image_files import DEFAULT_MAX_IMAGE_PIXELS, read_image_file
from stages.common.data.preprocessing import letterbox
from stages.common.deployment.inference_config import (
    CONFIG_FILE,
    LABELS_FILE,
    MODEL_FILE,
    check_model_against_config,
    load_inference_config,
    read_text_file,
)
from stages.common.quantization.int8_runtime import Int8Model


def _read_labels(path: Path) -> list[str]:
    """labels.txt's lines (the last newline may be missing); UserError for a line holding a
    character no label may hold."""
    text = read_text_file(path, "an output folder of the pipeline")
    lines = text.removesuffix("\n").split("\n") if text else []
    for number, line in enumerate(lines, 1):
        forbidden = forbidden_character(line)
        if forbidden:
            raise UserError(f"{path}:{number}: a {forbidden} in a label")
    return lines


def _checked_model_bytes(path: Path, config: dict, config_path: Path) -> bytes:
    """The model file's bytes, once they are a regular file of model.bytes bytes with
    model.sha256: the runtime is then given these very bytes."""
    try:
        data = read_regular_file(path)
    except FileNotFoundError:
        raise UserError(f"{path}: model file not found; {path.parent} must hold the five "
                        "outputs of one package run") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read: {error.strerror or error}") from None
    if len(data) != config["model"]["bytes"]:
        raise UserError(f"{path}: {len(data)} bytes, {config_path} field model.bytes says "
                        f"{config['model']['bytes']}; the files do not belong together")
    if bytes_sha256(data) != config["model"]["sha256"]:
        raise UserError(f"{path}: sha256 differs from {CONFIG_FILE}; the files "
                        "do not belong together")
    return data


@dataclass
class Predictor:
    model: Int8Model
    classes: list[str]
    int8_thresholds: np.ndarray
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    @classmethod
    def load(cls, output_dir: str | Path,
             max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> "Predictor":
        out = Path(output_dir)
        if not out.exists():
            raise UserError(f"{out}: folder not found; give the output folder of the pipeline")
        if not out.is_dir():
            raise UserError(f"{out}: not a folder; give the output folder of the pipeline "
                            f"(the five files, {CONFIG_FILE} among them)")
        config = load_inference_config(out / CONFIG_FILE)
        classes = _read_labels(out / LABELS_FILE)
        model_path = out / MODEL_FILE
        model_bytes = _checked_model_bytes(model_path, config, out / CONFIG_FILE)
        if classes != config["labels"]["classes"]:
            raise UserError(f"{out / LABELS_FILE} disagrees with {CONFIG_FILE} field "
                            f"labels.classes ({len(classes)} vs {len(config['labels']['classes'])} "
                            "classes, or another order)")
        model = Int8Model.load(model_path, content=model_bytes)
        check_model_against_config(model, config, str(out / CONFIG_FILE))
        rows = config["thresholds"]["classes"]
        return cls(model, classes, np.array([row["int8"] for row in rows]), max_image_pixels)

    def predict_pixels(self, letterboxed: np.ndarray) -> list[dict]:
        raw = self.model.raw_outputs(letterboxed)
        probabilities = self.model.probabilities(raw)
        results = []
        for q, p in zip(raw, probabilities):
            chosen = np.nonzero(q.astype(np.int64) >= self.int8_thresholds)[0]
            results.append({
                "labels": [{"class": self.classes[i], "probability": float(p[i])} for i in chosen],
                "probabilities": {name: float(v) for name, v in zip(self.classes, p)},
            })
        return results

    def predict_file(self, path: str | Path) -> dict:
        image = read_image_file(path, self.max_image_pixels)
        return {"image": str(path), **self.predict_image(image)}

    def predict_image(self, image: np.ndarray) -> dict:
        """One decoded RGB image (any size), letterboxed to the model's input as the phone does."""
        return self.predict_pixels(letterbox(image, self.model.input_size)[None])[0]
