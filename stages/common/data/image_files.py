"""Image files in and out: which files may reach the decoder (an accepted format by their first
bytes, a readable header, a pixel limit checked from it, all before any pixel is decoded), reading
a user's image, and the lossless encodings the pipeline writes (PNG, and the binary PPM the C app
reads)."""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from stages.common.core.errors import UserError, read_regular_file
from stages.common.data.preprocessing import decode_image

# Pillow's decompression-bomb check is replaced by explicit pixel limits, checked from the header
# (prepare.max_image_pixels, --max_image_pixels): set once here, for every module that reads images.
Image.MAX_IMAGE_PIXELS = None

# The accepted image formats, told by their first bytes before any decoder runs: both decoders
# (Pillow for the header, OpenCV for the pixels) read each of them, so the pixel limit is checked
# from the header for every accepted file. Others (HDR, PFM, EXR, ...) are refused unread.
IMAGE_SIGNATURES = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "BMP": (b"BM",),
    "WebP": (b"RIFF",),  # and "WEBP" at offset 8
    "TIFF": (b"II*\x00", b"MM\x00*"),
    "binary PPM/PGM": (b"P5", b"P6"),
}


ACCEPTED_FORMATS = ", ".join(IMAGE_SIGNATURES)


def image_format(data: bytes) -> str | None:
    """The accepted format ``data`` starts like, or None."""
    for name, signatures in IMAGE_SIGNATURES.items():
        if data.startswith(signatures) and (name != "WebP" or data[8:12] == b"WEBP"):
            return name
    return None


def image_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the file's header states it, read without decoding the pixels, so a
    huge image is refused before it costs memory; None if the header is not recognised."""
    try:
        with Image.open(io.BytesIO(data)) as header:
            return header.size
    except Exception:  # Pillow raises many types for data it cannot read
        return None


DEFAULT_MAX_IMAGE_PIXELS = 50_000_000  # also the default of prepare.max_image_pixels


def format_problem(data: bytes) -> str | None:
    """Why ``data`` is not an image this pipeline decodes, by its first bytes, or None."""
    if image_format(data) is None:
        return (f"not an accepted image format ({ACCEPTED_FORMATS}): it starts with "
                f"{data[:8]!r}")
    return None


def check_image_bytes(data: bytes, max_pixels: int, limit_name: str) -> str | None:
    """Why ``data`` may not reach a decoder, or None: not an accepted format by its first bytes,
    a header that cannot be read, or more than ``max_pixels`` pixels (the setting
    ``limit_name``)."""
    if not data:
        return "empty file (0 bytes)"
    if format_problem(data):
        return format_problem(data)
    size = image_header_size(data)
    if size is None:
        return f"its {image_format(data)} header cannot be read"
    if size[0] * size[1] > max_pixels:
        return (f"{size[0]}x{size[1]} = {size[0] * size[1]} pixels exceeds the limit of "
                f"{max_pixels} ({limit_name})")
    return None


def read_image_file(path: str | Path, max_pixels: int) -> np.ndarray:
    """Upright RGB pixels of an image file the user named; UserError if it cannot be read, is
    not a regular file, is not an accepted format, its header claims more than ``max_pixels``
    pixels (all checked before decoding), or it cannot be decoded. The message is about the
    image alone: callers put its name in front."""
    try:
        data = read_regular_file(Path(path))
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise UserError(f"cannot be read: {getattr(error, 'strerror', None) or error}") from None
    problem = check_image_bytes(data, max_pixels, "--max_image_pixels")
    if problem:
        raise UserError(problem)
    try:
        image = decode_image(data)
    except cv2.error as error:  # OpenCV's own limits and decoder failures
        raise UserError(f"cannot be decoded: {str(error).strip().splitlines()[-1]}") from None
    if image is None:
        raise UserError("cannot be decoded as an image")
    return image


def load_image(path: str | Path) -> np.ndarray:
    """Read and decode an image file; raises ValueError naming the file if it cannot."""
    data = Path(path).read_bytes()
    image = decode_image(data)
    if image is None:
        raise ValueError(f"{path}: cannot be decoded as an image")
    return image


def encode_rgb_png(image: np.ndarray, compression: int | None = None) -> bytes:
    """An RGB uint8 image as PNG bytes (lossless): OpenCV writes BGR, so the channels are swapped
    first and the PNG holds RGB, as a PNG reader (tf.io.decode_png included) returns it."""
    options = [] if compression is None else [cv2.IMWRITE_PNG_COMPRESSION, compression]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]), options)
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def save_rgb_png(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (lossless, so the bytes can be checked on the phone)."""
    Path(path).write_bytes(encode_rgb_png(image))


def encode_ppm(image: np.ndarray) -> bytes:
    """Binary PPM (P6, maxval 255) of an RGB uint8 image: decoded pixels as the C app reads them
    (stages/c_reference/classify), since decoding on the phone belongs to the platform."""
    height, width = image.shape[:2]
    return b"P6\n%d %d\n255\n" % (width, height) + np.ascontiguousarray(image, np.uint8).tobytes()
