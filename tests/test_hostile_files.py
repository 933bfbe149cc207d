"""Files that are not what their name says: images told by their first bytes before any decoder
runs, and FIFOs or devices where a file belongs, refused before they are opened for reading."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from stages.common.core.errors import NotRegularFileError, UserError, read_regular_file, read_utf8
from stages.common.data.preprocessing import encode_ppm, image_format, read_image_file

RADIANCE = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 10 +X 12\n" + bytes([128] * 4) * 120
PFM = b"PF\n12 10\n-1.0\n" + np.ones(360, "<f4").tobytes()


@pytest.mark.parametrize("data", [RADIANCE, PFM], ids=["radiance_hdr", "pfm"])
def test_formats_pillow_cannot_read_never_reach_the_decoder(tmp_path, data):
    """OpenCV decodes Radiance HDR and PFM, whose size Pillow cannot read: the pixel limit was
    skipped for them. Only allow-listed formats reach a decoder now, after the limit."""
    path = tmp_path / "image.jpg"
    path.write_bytes(data)
    with pytest.raises(UserError, match=r"not an accepted image format \(JPEG, PNG, BMP, WebP, "
                                        r"TIFF, binary PPM/PGM\)"):
        read_image_file(path, max_pixels=50)


def test_every_accepted_format_is_told_by_its_first_bytes_and_its_limit_checked(tmp_path):
    import cv2

    pixels = np.random.default_rng(0).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    encoded = {name: cv2.imencode(ext, pixels[..., ::-1])[1].tobytes()
               for name, ext in (("JPEG", ".jpg"), ("PNG", ".png"), ("BMP", ".bmp"),
                                 ("WebP", ".webp"), ("TIFF", ".tiff"))}
    encoded["binary PPM/PGM"] = encode_ppm(pixels)
    for name, data in encoded.items():
        assert image_format(data) == name
        path = tmp_path / f"image.{name[:4]}"
        path.write_bytes(data)
        assert read_image_file(path, max_pixels=120).shape == (10, 12, 3)
        with pytest.raises(UserError, match="10 = 120 pixels exceeds the limit of 119"):
            read_image_file(path, max_pixels=119)
    assert image_format(b"RIFF\0\0\0\0WAVEfmt ") is None  # a RIFF that is not WebP


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "labels.txt"
    os.mkfifo(fifo)
    outcome = {}

    def read():
        for name, reader in (("bytes", lambda: read_regular_file(fifo)),
                             ("text", lambda: read_utf8(fifo, "not found")),
                             ("image", lambda: read_image_file(fifo, 100))):
            try:
                reader()
            except (NotRegularFileError, UserError) as error:
                outcome[name] = str(error)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "a reader waits on the FIFO for a writer"
    assert "not a regular file" in outcome["bytes"] and str(fifo) in outcome["bytes"]
    assert outcome["text"] == f"{fifo}: cannot be read: not a regular file (a FIFO, device, " \
                              "socket or folder)"
    assert "not a regular file" in outcome["image"]
    with pytest.raises(NotRegularFileError):
        read_regular_file("/dev/zero")  # a device that never ends


def test_decode_to_ppm_names_a_fifo_image(tmp_path):
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    (tmp_path / "out").mkdir()
    result = subprocess.run([sys.executable, "-m", "stages.decode_to_ppm", str(tmp_path / "out"),
                             str(fifo)], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr
    assert f"{fifo}: error: cannot be read: not a regular file" in result.stdout + result.stderr
