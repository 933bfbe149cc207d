"""Inference from the five outputs alone, following inference_config.json as the phone does."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .int8_runtime import Int8Model
from .hashing import file_sha256
from .package import CONFIG_FILE, LABELS_FILE, MODEL_FILE
from .preprocessing import decode_image, letterbox


@dataclass
class Predictor:
    model: Int8Model
    classes: list[str]
    int8_thresholds: np.ndarray

    @classmethod
    def load(cls, output_dir: str | Path) -> "Predictor":
        out = Path(output_dir)
        try:
            config = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
            classes = (out / LABELS_FILE).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as error:
            raise UserError(f"{error.filename}: not found; is {out} a pipeline output folder?") from None
        except json.JSONDecodeError as error:
            raise UserError(f"{out / CONFIG_FILE}:{error.lineno}: invalid JSON: {error.msg}") from None
        if file_sha256(out / MODEL_FILE) != config["model"]["sha256"]:
            raise UserError(f"{out / MODEL_FILE}: sha256 differs from {CONFIG_FILE}; the files "
                            "do not belong together")
        if classes != config["labels"]["classes"]:
            raise UserError(f"{out / LABELS_FILE} disagrees with {CONFIG_FILE}")
        model = Int8Model.load(out / MODEL_FILE)
        rows = config["thresholds"]["classes"]
        return cls(model, classes, np.array([row["int8"] for row in rows]))

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
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise UserError(f"cannot be read: {error.strerror or error}") from None
        image = decode_image(data)
        if image is None:
            raise UserError("cannot be decoded as an image")
        boxed = letterbox(image, self.model.input_size)[None]
        return {"image": str(path), **self.predict_pixels(boxed)[0]}
