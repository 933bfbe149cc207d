"""Image preprocessing, written once: decode, letterbox, normalise.

Training, export, evaluation, predict and the phone all use exactly these rules. The C file
``stages/c_reference/letterbox.c`` implements the same letterbox and the tests compare the two
byte for byte; any change here must be made there too.

Decoding (``decode_image``)
    OpenCV ``imdecode`` with ``IMREAD_COLOR_RGB``:
    - EXIF orientation is applied, so the image is upright as a photo viewer shows it; the phone
      must letterbox the upright bitmap too.
    - grayscale is replicated to three channels, an alpha channel is dropped (not composited),
      16-bit samples become 8-bit by keeping the high byte (``v >> 8``).
    - the result is RGB, uint8, height x width x 3, row-major, channels interleaved.

Letterbox to an S x S square (``letterbox``), for an image of height h and width w
    1. ``m = max(h, w)``; the new size is ``new_h = round(h * S / m)``, ``new_w = round(w * S / m)``
       where round is half away from zero (C's ``round``/``lround``) of the exact rational
       value, computed in integers as ``(2 * h * S + m) / (2 * m)`` (integer division), and never
       less than 1. The longer side becomes exactly S. Example: 101 x 480 -> 51 x 240.
    2. Bilinear resize to new_h x new_w with the fixed-point rule below.
    3. Paste on a black (0, 0, 0) S x S canvas at ``top = (S - new_h) / 2``,
       ``left = (S - new_w) / 2`` (integer division): an odd leftover pixel goes to the bottom
       or right border.
    4. No crop.

Bilinear resize, fixed point (``resize_bilinear``), source length n, destination length d, per
axis. Pixel centres are aligned (the "half pixel" convention of OpenCV and TF2): destination
index i samples the source at ``x = (i + 0.5) * n / d - 0.5``. In integers:
    num = (2 * i + 1) * n - d          (equals 2 * d * x)
    if num < 0: num = 0                (left of the first centre: clamp to the edge)
    i0 = num / (2 * d);  rem = num - i0 * 2 * d
    f = (rem * 2048 + d) / (2 * d)     (the fraction in 1/2048 units, rounded half up)
    if f == 2048: i0 += 1; f = 0
    if i0 >= n - 1: i0 = n - 1; f = 0  (right of the last centre: clamp to the edge)
    i1 = min(i0 + 1, n - 1)
All divisions are integer divisions of non-negative numbers. With the row table (y0, y1, fy)
and the column table (x0, x1, fx), for each channel c:
    top    = src[y0][x0][c] * (2048 - fx) + src[y0][x1][c] * fx
    bottom = src[y1][x0][c] * (2048 - fx) + src[y1][x1][c] * fx
    out    = (top * (2048 - fy) + bottom * fy + 2**21) >> 22
Intermediate values stay below 2**31; 64-bit integers are used on both sides anyway.
This is a plain two-tap bilinear filter: a strong downscale aliases, as OpenCV's INTER_LINEAR
does. It is not OpenCV's resize, whose SIMD fixed-point paths a C implementation cannot follow.

Normalisation
    student: ``(x - 127) / 128`` in float32, so 0 -> -0.9921875 and 255 -> 1.0; the INT8 model's
    input quantisation (scale 1/128, zero point 127) makes the raw letterboxed uint8 pixels the
    model input on the phone.
    teacher: the letterboxed pixels as float32 in [0, 255]; the Keras EfficientNet normalises
    inside the model.
"""
from __future__ import annotations

import cv2
import numpy as np

FRACTION_BITS = 11
FRACTION_ONE = 1 << FRACTION_BITS  # 2048
_ROUND_SHIFT = 2 * FRACTION_BITS  # the two passes' weights multiply: 2**22
_ROUND_HALF = 1 << (_ROUND_SHIFT - 1)


def letterbox_geometry(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """Return ``(new_h, new_w, top, left)`` of the content box inside the S x S canvas."""
    if height < 1 or width < 1 or size < 1:
        raise ValueError(f"image {height}x{width} and size {size} must all be positive")
    longest = max(height, width)
    new_h = max(1, (2 * height * size + longest) // (2 * longest))
    new_w = max(1, (2 * width * size + longest) // (2 * longest))
    return new_h, new_w, (size - new_h) // 2, (size - new_w) // 2


def content_box(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the image inside its letterbox (augmentation keeps the
    border outside it black)."""
    new_h, new_w, top, left = letterbox_geometry(height, width, size)
    return top, left, new_h, new_w


def _axis_table(src_len: int, dst_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and 11-bit fractions for each destination index on one axis."""
    i = np.arange(dst_len, dtype=np.int64)
    num = np.maximum((2 * i + 1) * src_len - dst_len, 0)
    den = 2 * dst_len
    i0 = num // den
    frac = ((num - i0 * den) * FRACTION_ONE + dst_len) // den
    carry = frac == FRACTION_ONE
    i0[carry] += 1
    frac[carry] = 0
    beyond = i0 >= src_len - 1
    i0[beyond] = src_len - 1
    frac[beyond] = 0
    i1 = np.minimum(i0 + 1, src_len - 1)
    return i0, i1, frac


def resize_bilinear(image: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """Resize an H x W x C uint8 image with the fixed-point bilinear rule of this module."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected an H x W x C uint8 array, got {image.dtype} {image.shape}")
    src_h, src_w = image.shape[:2]
    y0, y1, fy = _axis_table(src_h, new_h)
    x0, x1, fx = _axis_table(src_w, new_w)
    wx1 = fx[None, :, None]
    wx0 = FRACTION_ONE - wx1

    def horizontal(rows: np.ndarray) -> np.ndarray:
        picked = image[rows].astype(np.int64)
        return picked[:, x0] * wx0 + picked[:, x1] * wx1

    wy1 = fy[:, None, None]
    blended = horizontal(y0) * (FRACTION_ONE - wy1) + horizontal(y1) * wy1
    return ((blended + _ROUND_HALF) >> _ROUND_SHIFT).astype(np.uint8)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Letterbox an RGB uint8 image into a black ``size`` x ``size`` x 3 canvas."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 RGB image, got {image.dtype} {image.shape}")
    new_h, new_w, top, left = letterbox_geometry(image.shape[0], image.shape[1], size)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[top:top + new_h, left:left + new_w] = resize_bilinear(image, new_h, new_w)
    return canvas


def decode_image(data: bytes) -> np.ndarray | None:
    """Decode encoded image bytes to upright RGB uint8 (H x W x 3); None if undecodable."""
    if not data:
        return None
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR_RGB)
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 3 or decoded.dtype != np.uint8:
        return None
    return decoded


STUDENT_ZERO_POINT = 127.0
STUDENT_SCALE = 128.0


def _as_float(pixels):
    """numpy (or plain Python) values become float32; float tensors of a framework pass through."""
    if isinstance(pixels, (np.ndarray, list, tuple, int, float, np.number)):
        return np.asarray(pixels, dtype=np.float32)
    return pixels


def normalize_student(pixels):
    """Student input: ``(x - 127) / 128`` (exact in float32 for uint8 x). Works on numpy arrays
    and on float32 TensorFlow tensors, so the tf.data pipeline uses this very function."""
    return (_as_float(pixels) - STUDENT_ZERO_POINT) / STUDENT_SCALE


def normalize_teacher(pixels):
    """Teacher input: the pixels in [0, 255] as float (Keras EfficientNet normalises inside)."""
    return _as_float(pixels)


NORMALIZERS = {"student": normalize_student, "teacher": normalize_teacher}


def preprocessing_spec(size: int) -> dict:
    """The rules of this module as data, for inference_config.json (what the phone must do)."""
    return {
        "decode": {
            "exif_orientation": "applied: letterbox the upright image a photo viewer shows",
            "color_order": "RGB",
            "grayscale": "replicated to R, G and B",
            "alpha": "dropped (not composited)",
            "16_bit": "high byte kept (v >> 8)",
        },
        "letterbox": {
            "size": size,
            "content_size": "m = max(h, w); new_h = max(1, (2*h*S + m) / (2*m)); "
                            "new_w = max(1, (2*w*S + m) / (2*m)); integer division, i.e. "
                            "round half away from zero of h*S/m and w*S/m",
            "placement": "top = (S - new_h) / 2, left = (S - new_w) / 2 (integer division): "
                         "an odd leftover pixel goes to the bottom or right border",
            "canvas": [0, 0, 0],
            "crop": False,
            "resize": {
                "method": "bilinear, aligned pixel centres, 11-bit fixed point",
                "axis_table": "for destination index i on an axis of source length n and "
                              "destination length d: num = max(0, (2*i + 1)*n - d); "
                              "i0 = num / (2*d); f = ((num - i0*2*d)*2048 + d) / (2*d); "
                              "if f == 2048: i0 += 1, f = 0; if i0 >= n - 1: i0 = n - 1, f = 0; "
                              "i1 = min(i0 + 1, n - 1)",
                "pixel": "top = s[y0][x0]*(2048 - fx) + s[y0][x1]*fx; "
                         "bottom = s[y1][x0]*(2048 - fx) + s[y1][x1]*fx; "
                         "out = (top*(2048 - fy) + bottom*fy + 2^21) >> 22, "
                         "per channel, 64-bit integers",
                "reference_c": "stages/c_reference/letterbox.c (byte-identical, tested)",
            },
        },
    }


