"""A hard multi-label benchmark of our own, separate from the demo: small handwritten digits on
real photographs.

The demo's shapes are easy (test INT8 macro-F1 about 0.97); users bring harder data. Here each
image is a crop of a real photograph (the sample photos scikit-image and scikit-learn install)
with zero to three of seven digit classes written on it, each a handwritten digit of
scikit-learn's set, scaled, rotated, coloured against its surroundings, sometimes partly covered
by another piece of photograph. Some images also hold a digit 8 or 9, a distractor with no
label. The whole image is then blurred, noised and saved as JPEG at a random quality. Classes
are imbalanced: the last is about a third as frequent as the first.

The handwritten samples are split between train, val and test before any image is drawn, so no
sample is seen in two splits; the photographs are shared (they are background, not labels).
Everything follows from the seed: the same seed gives the same files.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("zero", "one", "two", "three", "four", "five", "six")
DISTRACTOR_DIGITS = (8, 9)  # not 7: rotated and small, many of its samples read as a 1
# relative frequency of each class among the labels: from 1 down to about 1/3
CLASS_WEIGHTS = tuple(0.83 ** k for k in range(len(CLASSES)))
LABEL_COUNT_PROBABILITIES = (0.15, 0.4, 0.3, 0.15)  # 0, 1, 2, 3 labels an image
ASPECTS = (1.0, 4 / 3, 3 / 4, 16 / 9, 9 / 16, 3 / 2)  # width / height
SPLIT_SHARES = {"train": 0.6, "val": 0.2, "test": 0.2}  # of the handwritten samples
# sample photographs that ship inside installed packages (no download)
PHOTOS = {
    "skimage": ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png",
                "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "moon.png",
                "motorcycle_left.png", "retina.jpg", "rocket.jpg"),
    "sklearn": ("china.jpg", "flower.jpg"),
}


def _package_folder(package: str, sub: str) -> Path:
    spec = importlib.util.find_spec(package)  # found without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed: the benchmark's photographs come from it "
                           "(pip install -r requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / sub


def load_photos() -> list[np.ndarray]:
    """The background photographs, RGB uint8, in a fixed order."""
    folders = {"skimage": _package_folder("skimage", "data"),
               "sklearn": _package_folder("sklearn", "datasets/images")}
    photos = []
    for package, names in PHOTOS.items():
        for name in names:
            path = folders[package] / name
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise RuntimeError(f"{path}: cannot read this sample photograph")
            photos.append(np.ascontiguousarray(image[:, :, ::-1]))
    return photos


def load_digit_pools(seed: int) -> dict[str, dict[int, np.ndarray]]:
    """scikit-learn's 1797 handwritten digits (8x8, values 0..16) as float masks in 0..1, split
    per digit between train, val and test: split -> digit -> (n, 8, 8)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng([seed, 1])
    pools: dict[str, dict[int, np.ndarray]] = {split: {} for split in SPLIT_SHARES}
    for digit in range(10):
        samples = digits.images[digits.target == digit] / 16.0
        order = rng.permutation(len(samples))
        start = 0
        for split, share in SPLIT_SHARES.items():
            count = round(share * len(samples)) if split != "test" else len(samples) - start
            pools[split][digit] = samples[order[start:start + count]].astype(np.float32)
            start += count
    return pools


def _background(photos: list[np.ndarray], rng: np.random.Generator, height: int,
                width: int) -> np.ndarray:
    photo = photos[rng.integers(len(photos))]
    ph, pw = photo.shape[:2]
    # a crop of the photo's aspect as the image, between a quarter and all of the photo
    scale = rng.uniform(0.25, 1.0)
    ch = max(8, min(ph, round(ph * scale)))
    cw = max(8, min(pw, round(ch * width / height)))
    ch = max(8, min(ph, round(cw * height / width)))
    top, left = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
    crop = photo[top:top + ch, left:left + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    image = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    gain, offset = rng.uniform(0.7, 1.2), rng.uniform(-30, 30)
    return image * gain + offset


def _digit_mask(sample: np.ndarray, size: int, angle: float,
                rng: np.random.Generator) -> np.ndarray:
    """The 8x8 sample scaled to size x size, its strokes thickened or thinned, rotated in a
    square big enough for any angle."""
    mask = cv2.resize(sample, (size, size), interpolation=cv2.INTER_CUBIC)
    mask = np.clip((mask - rng.uniform(0.15, 0.45)) * 2.5, 0.0, 1.0)
    side = int(math.ceil(size * math.sqrt(2)))
    padded = np.zeros((side, side), np.float32)
    offset = (side - size) // 2
    padded[offset:offset + size, offset:offset + size] = mask
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    return cv2.warpAffine(padded, rotation, (side, side), flags=cv2.INTER_LINEAR)


def _contrasting_colour(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour whose brightness differs from the patch's mean by at least 60 of 255."""
    mean = float(patch.mean())
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if abs(float(colour.mean()) - mean) >= 60:
            return colour
    return np.full(3, 0.0 if mean > 127 else 255.0)


def _place(image: np.ndarray, mask: np.ndarray, boxes: list[tuple[int, int, int, int]],
           rng: np.random.Generator) -> tuple[int, int] | None:
    """A top-left corner for the mask inside the image that overlaps earlier digits little."""
    height, width = image.shape[:2]
    side = mask.shape[0]
    if side >= min(height, width):
        return None
    for _ in range(30):
        top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
        box = (top, left, top + side, left + side)
        if all(_overlap(box, other) < 0.15 * side * side for other in boxes):
            boxes.append(box)
            return top, left
    return None


def _overlap(a, b) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _paste_digit(image: np.ndarray, sample: np.ndarray, boxes: list,
                 photos: list[np.ndarray], rng: np.random.Generator) -> bool:
    height, width = image.shape[:2]
    size = max(12, round(rng.uniform(0.2, 0.4) * min(height, width)))
    mask = _digit_mask(sample, size, rng.uniform(-20, 20), rng)
    corner = _place(image, mask, boxes, rng)
    if corner is None:
        return False
    top, left = corner
    side = mask.shape[0]
    region = image[top:top + side, left:left + side]
    colour = _contrasting_colour(region, rng)
    alpha = mask[..., None] * rng.uniform(0.75, 1.0)
    region[:] = region * (1 - alpha) + colour * alpha
    if rng.random() < 0.15:  # occlusion: a piece of another photograph over part of the digit
        cover_h = int(side * rng.uniform(0.2, 0.4))
        cover_w = int(side * rng.uniform(0.2, 0.4))
        y, x = int(rng.integers(0, side - cover_h)), int(rng.integers(0, side - cover_w))
        patch = _background(photos, rng, cover_h, cover_w)
        region[y:y + cover_h, x:x + cover_w] = patch
    return True


def make_benchmark_image(photos: list[np.ndarray], pool: dict[int, np.ndarray],
                         rng: np.random.Generator) -> tuple[np.ndarray, list[str], int]:
    """One RGB uint8 image, its sorted labels and its JPEG quality."""
    long_side = int(rng.integers(224, 481))
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    width = long_side if aspect >= 1 else round(long_side * aspect)
    height = long_side if aspect <= 1 else round(long_side / aspect)
    image = _background(photos, rng, height, width)
    count = rng.choice(len(LABEL_COUNT_PROBABILITIES), p=LABEL_COUNT_PROBABILITIES)
    weights = np.array(CLASS_WEIGHTS) / sum(CLASS_WEIGHTS)
    chosen = rng.choice(len(CLASSES), size=count, replace=False, p=weights)
    distractors = rng.choice(DISTRACTOR_DIGITS, size=rng.choice(2, p=(0.8, 0.2)))
    boxes: list = []
    labels = []
    for digit in chosen:
        samples = pool[int(digit)]
        if _paste_digit(image, samples[rng.integers(len(samples))], boxes, photos, rng):
            labels.append(CLASSES[int(digit)])
    for digit in distractors:
        samples = pool[int(digit)]
        _paste_digit(image, samples[rng.integers(len(samples))], boxes, photos, rng)
    sigma = rng.uniform(0.0, 1.0)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image + rng.normal(0, rng.uniform(0, 8), image.shape)
    quality = int(rng.integers(40, 96))
    return np.clip(image, 0, 255).astype(np.uint8), sorted(labels), quality


UNLABELLED_STREAM = 1000  # the images without labels: random stream [seed, 2, 1000]


def write_benchmark_dataset(out_dir: str | Path, counts: dict[str, int], seed: int,
                            unlabelled: int = 0) -> dict[str, int]:
    """Write images/ and the three split files in the dataset format the pipeline reads;
    returns the number of images per split. ``unlabelled``: that many more images, drawn as
    the training images are (from the training split's handwritten samples, so none of val's or
    test's) but from a random stream of their own, listed in unlabelled.txt without their labels,
    which are written nowhere."""
    out = Path(out_dir)
    unknown = set(counts) - set(SPLIT_SHARES)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}")
    photos = load_photos()
    pools = load_digit_pools(seed)
    written = {}
    for split, count in counts.items():
        rng = np.random.default_rng([seed, 2, list(SPLIT_SHARES).index(split)])
        lines = []
        for index in range(count):
            image, labels, quality = make_benchmark_image(photos, pools[split], rng)
            name = f"{split}_{index:04d}.jpg"
            _write_jpeg(out / "images" / name, image, quality)
            lines.append(f"{name},{'|'.join(labels)}")
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written[split] = count
    if unlabelled:
        rng = np.random.default_rng([seed, 2, UNLABELLED_STREAM])
        names = []
        for index in range(unlabelled):
            image, _, quality = make_benchmark_image(photos, pools["train"], rng)
            names.append(f"unlabelled_{index:04d}.jpg")
            _write_jpeg(out / "images" / names[-1], image, quality)
        (out / "unlabelled.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
        written["unlabelled"] = unlabelled
    return written


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"cannot encode {path.name}")
    path.write_bytes(encoded.tobytes())
