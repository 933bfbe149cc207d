"""A small, deterministic multi-label dataset in the seed's format, so the pipeline runs anywhere.

Each image is a cluttered scene (colour gradient, noise, faint lines) with zero to three
different shapes; the labels are the shapes present. Aspect ratios vary from 9:16 to 2:1, the
longer side from 160 to 640 pixels; most files are JPEG, some PNG, some in a sub-folder; both
no-label forms (``name.jpg,`` and ``name.jpg``) occur.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("circle", "cross", "ring", "square", "triangle")
ASPECTS = (1.0, 4 / 3, 3 / 4, 16 / 9, 9 / 16, 2.0, 3 / 2)  # width / height
OBJECT_COUNT_PROBABILITIES = (0.15, 0.45, 0.3, 0.1)  # 0, 1, 2, 3 shapes per image


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xs * math.cos(angle) + ys * math.sin(angle))
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    image = start + ramp[..., None] * (end - start)
    image += rng.normal(0, 12, image.shape)
    for _ in range(rng.integers(2, 7)):  # clutter that is not any class
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(image, p1, p2, rng.uniform(0, 255, 3).tolist(), int(rng.integers(1, 3)))
    return image


def _polygon(center, radius, angle, corners):
    return np.array([
        (center[0] + radius * math.cos(angle + 2 * math.pi * k / corners),
         center[1] + radius * math.sin(angle + 2 * math.pi * k / corners))
        for k in range(corners)
    ], dtype=np.int32)


def _draw(image: np.ndarray, shape: str, rng: np.random.Generator) -> None:
    height, width = image.shape[:2]
    radius = rng.uniform(0.1, 0.2) * min(height, width)
    center = (rng.uniform(radius, width - radius), rng.uniform(radius, height - radius))
    colour = rng.uniform(0, 255, 3).tolist()
    angle = rng.uniform(0, 2 * math.pi)
    c = (int(center[0]), int(center[1]))
    if shape == "circle":
        cv2.circle(image, c, int(radius), colour, -1, cv2.LINE_AA)
    elif shape == "ring":
        cv2.circle(image, c, int(radius), colour, max(2, int(radius / 4)), cv2.LINE_AA)
    elif shape == "square":
        cv2.fillPoly(image, [_polygon(center, radius, angle, 4)], colour, cv2.LINE_AA)
    elif shape == "triangle":
        cv2.fillPoly(image, [_polygon(center, radius, angle, 3)], colour, cv2.LINE_AA)
    elif shape == "cross":
        thickness = max(2, int(radius / 3))
        for a in (angle, angle + math.pi / 2):
            dx, dy = radius * math.cos(a), radius * math.sin(a)
            cv2.line(image, (int(center[0] - dx), int(center[1] - dy)),
                     (int(center[0] + dx), int(center[1] + dy)), colour, thickness, cv2.LINE_AA)
    else:
        raise ValueError(f"unknown shape {shape}")


def make_demo_image(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """One RGB uint8 scene and its sorted labels."""
    long_side = int(rng.integers(160, 641))
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    width = long_side if aspect >= 1 else max(16, round(long_side * aspect))
    height = long_side if aspect <= 1 else max(16, round(long_side / aspect))
    image = _background(rng, height, width)
    count = rng.choice(len(OBJECT_COUNT_PROBABILITIES), p=OBJECT_COUNT_PROBABILITIES)
    labels = sorted(rng.choice(CLASSES, size=count, replace=False).tolist())
    for shape in labels:
        _draw(image, shape, rng)
    image = cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (3, 3), 0)
    return image, labels


def write_demo_dataset(out_dir: str | Path, counts: dict[str, int], seed: int) -> dict[str, int]:
    """Write images/ and the three split files; returns the number of images per split."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    written = {}
    for split, count in counts.items():
        lines = []
        for index in range(count):
            image, labels = make_demo_image(rng)
            folder = "outdoor/" if index % 5 == 4 else ""
            ext = ".png" if index % 7 == 3 else ".jpg"
            name = f"{folder}{split}_{index:04d}{ext}"
            path = out / "images" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == ".jpg" else []
            ok, encoded = cv2.imencode(ext, image[:, :, ::-1], params)
            if not ok:
                raise RuntimeError(f"cannot encode {name}")
            path.write_bytes(encoded.tobytes())
            if labels:
                lines.append(f"{name},{'|'.join(labels)}")
            else:
                lines.append(name if index % 2 else f"{name},")
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written[split] = count
    return written
