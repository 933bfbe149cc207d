"""Letterbox: golden cases, C rounding, decode rules, and byte parity with the C reference."""
import io
import shutil
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from stages.common.data.preprocessing import (
    decode_image,
    letterbox,
    letterbox_geometry,
    normalize_student,
    normalize_teacher,
    resize_bilinear,
)

REPO = Path(__file__).resolve().parents[2]
C_DIR = REPO / "stages" / "c_reference"


@pytest.mark.parametrize(
    "height, width, size, expected",
    [
        (101, 480, 240, (51, 240, 94, 0)),  # 50.5 rounds away from zero; odd pixel at the bottom
        (480, 101, 240, (240, 51, 0, 94)),
        (5, 8, 4, (3, 4, 0, 0)),  # 2.5 -> 3, where Python's round() would give 2
        (1, 1, 240, (240, 240, 0, 0)),
        (1, 5000, 240, (1, 240, 119, 0)),  # 0.048 would round to 0: a side is never zero
        (300, 300, 300, (300, 300, 0, 0)),
        (3000, 4000, 300, (225, 300, 37, 0)),
        (1080, 1920, 240, (135, 240, 52, 0)),
    ],
)
def test_geometry_golden(height, width, size, expected):
    assert letterbox_geometry(height, width, size) == expected


def test_geometry_rejects_empty_image():
    with pytest.raises(ValueError):
        letterbox_geometry(0, 10, 240)


def test_resize_hand_computed_upscale():
    row = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    out = resize_bilinear(row, 1, 4)
    # samples at x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped): 0, 63.75, 191.25, 255
    assert out[0, :, 0].tolist() == [0, 64, 191, 255]


def test_resize_same_size_is_identity_and_constant_stays_constant():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert np.array_equal(resize_bilinear(image, 37, 53), image)
    constant = np.full((17, 90, 3), 201, dtype=np.uint8)
    assert np.all(resize_bilinear(constant, 5, 23) == 201)
    assert np.all(resize_bilinear(constant, 40, 300) == 201)


def test_resize_is_bilinear_like_opencv():
    """Same sampling convention as OpenCV INTER_LINEAR; only its coefficient rounding differs."""
    rng = np.random.default_rng(1)
    for src_h, src_w, dst_h, dst_w in [(50, 80, 30, 48), (20, 30, 70, 95), (333, 91, 240, 66)]:
        image = cv2.GaussianBlur(rng.integers(0, 256, (src_h, src_w, 3), dtype=np.uint8), (5, 5), 0)
        ours = resize_bilinear(image, dst_h, dst_w).astype(int)
        reference = cv2.resize(image, (dst_w, dst_h), interpolation=cv2.INTER_LINEAR).astype(int)
        assert np.abs(ours - reference).max() <= 1


def test_letterbox_canvas_is_black_outside_content():
    image = np.full((101, 480, 3), 255, dtype=np.uint8)
    out = letterbox(image, 240)
    assert out.shape == (240, 240, 3) and out.dtype == np.uint8
    assert np.all(out[94:145] == 255)
    assert np.all(out[:94] == 0) and np.all(out[145:] == 0)  # 94 rows above, 95 below


def test_letterbox_keeps_rgb_order():
    image = np.zeros((10, 20, 3), dtype=np.uint8)
    image[..., 0] = 200  # red
    out = letterbox(image, 40)
    assert out[20, 20].tolist() == [200, 0, 0]


def test_normalisation():
    pixels = np.array([0, 127, 255], dtype=np.uint8)
    assert normalize_student(pixels).tolist() == [-127 / 128, 0.0, 1.0]
    assert normalize_student(pixels).dtype == np.float32
    assert normalize_teacher(pixels).tolist() == [0.0, 127.0, 255.0]


def _encode(array, ext):
    ok, data = cv2.imencode(ext, array)
    assert ok
    return data.tobytes()


def test_decode_is_rgb_and_handles_gray_alpha_and_16_bit():
    bgr = np.zeros((2, 2, 3), dtype=np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's BGR order
    assert decode_image(_encode(bgr, ".png"))[0, 0].tolist() == [0, 0, 255]
    gray = np.array([[10, 200]], dtype=np.uint8)
    assert decode_image(_encode(gray, ".png"))[0].tolist() == [[10] * 3, [200] * 3]
    bgra = np.array([[[30, 20, 10, 0]]], dtype=np.uint8)  # fully transparent
    assert decode_image(_encode(bgra, ".png"))[0, 0].tolist() == [10, 20, 30]  # alpha dropped
    deep = np.array([[1000, 60000]], dtype=np.uint16)
    assert decode_image(_encode(deep, ".png"))[0, :, 0].tolist() == [1000 >> 8, 60000 >> 8]


@pytest.mark.parametrize("orientation, turn", [(6, -1), (8, 1), (3, 2), (1, 0)])
def test_decode_applies_exif_orientation(orientation, turn):
    """An asymmetric picture (red left, blue right, a green top-left corner) stored with an
    EXIF orientation decodes as a viewer shows it: 6 turns it 90 degrees clockwise, 8
    anticlockwise, 3 by 180. Turning the wrong way, or not at all, moves the colours."""
    stored = np.zeros((20, 40, 3), np.uint8)  # 20 rows x 40 columns as stored
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    stored[:8, :8] = (0, 255, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="JPEG", quality=100, exif=exif)
    decoded = decode_image(buffer.getvalue())
    errors = {k: np.abs(decoded.astype(int) - np.rot90(stored, k=k)).mean()  # k=-1: clockwise
              for k in (-1, 0, 1, 2) if np.rot90(stored, k=k).shape == decoded.shape}
    assert turn in errors and errors[turn] < 8  # JPEG's loss only (chroma at the edges)
    assert all(error > 40 for k, error in errors.items() if k != turn), errors


def test_decode_rejects_garbage_and_empty():
    assert decode_image(b"") is None
    assert decode_image(b"not an image at all") is None


@pytest.fixture(scope="module")
def c_letterbox(tmp_path_factory):
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert compiler, "the C parity test needs a C compiler (cc, gcc or clang) on PATH"
    binary = tmp_path_factory.mktemp("c") / "letterbox_stream"
    subprocess.run(
        [compiler, "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror",
         "-I", str(C_DIR), str(C_DIR / "letterbox.c"),
         str(REPO / "tests" / "helpers" / "letterbox_stream.c"),
         "-o", str(binary)],
        check=True,
    )
    return binary


def _random_sizes(rng, count):
    """Log-uniform sides from 1 to 3000, both orientations, plus edge shapes."""
    sides = np.exp(rng.uniform(0, np.log(3000), size=(count, 2))).astype(int)
    fixed = [(1, 1), (1, 3000), (3000, 1), (2, 2), (239, 240), (241, 240), (480, 101), (101, 480)]
    return fixed + [tuple(s) for s in sides]


@pytest.mark.parametrize("size", [240, 300])
def test_c_reference_is_byte_identical(c_letterbox, size):
    rng = np.random.default_rng(size)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in _random_sizes(rng, 200)]
    stream = b"".join(struct.pack("=iii", *im.shape[:2], size) + im.tobytes() for im in images)
    result = subprocess.run([str(c_letterbox)], input=stream, capture_output=True, check=True)
    assert len(result.stdout) == len(images) * size * size * 3
    outputs = np.frombuffer(result.stdout, dtype=np.uint8).reshape(len(images), size, size, 3)
    for image, c_output in zip(images, outputs):
        assert np.array_equal(letterbox(image, size), c_output), f"mismatch for {image.shape}"


def test_letterbox_cli_writes_the_exact_pixels(tmp_path):
    import sys

    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (101, 480, 3), dtype=np.uint8)
    source = tmp_path / "in.png"
    source.write_bytes(_encode(image[:, :, ::-1], ".png"))
    out = tmp_path / "out.png"
    result = subprocess.run([sys.executable, "-m", "tools.letterbox", str(source),
                             str(out), "--size", "240"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "content 51x240 at top=94, left=0" in result.stdout
    assert np.array_equal(decode_image(out.read_bytes()), letterbox(image, 240))
    for content, problem in ((b"nope", "not an accepted image format"),
                             (b"\xff\xd8\xff\xe0 a cut JPEG", "its JPEG header cannot be read")):
        broken = tmp_path / "broken.jpg"
        broken.write_bytes(content)
        result = subprocess.run([sys.executable, "-m", "tools.letterbox", str(broken),
                                 str(out)], capture_output=True, text=True)
        assert result.returncode == 2 and f"broken.jpg: {problem}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
