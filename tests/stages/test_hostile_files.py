"""Files that are not what their name says: images told by their first bytes before any decoder
runs, and FIFOs or devices where a file belongs, refused before they are opened for reading."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from stages.common.core.errors import NotRegularFileError, UserError, read_regular_file, read_utf8
from stages.common.data.image_files import encode_ppm, image_format, read_image_file

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
    result = subprocess.run([sys.executable, "-m", "tools.decode_to_ppm", str(tmp_path / "out"),
                             str(fifo)], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr
    assert f"{fifo}: error: cannot be read: not a regular file" in result.stdout + result.stderr


# ---- damaged intermediate files: named, with the way to get them back -------------------------

@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.demo_data import write_demo_dataset
    from stages.common.data.tfrecord_shards import write_shards

    root = tmp_path_factory.mktemp("shards")
    write_demo_dataset(root / "demo", {"train": 24, "val": 12, "test": 12}, seed=11)
    dataset = validate_dataset(root / "demo", max_pixels=10**7)
    write_shards(dataset, root / "shards", {"student": 32})
    return root / "shards", dataset


@pytest.mark.parametrize("damage", ["truncated", "byte_flipped"])
def test_a_damaged_shard_is_named_with_the_way_back(small_shards, tmp_path, damage):
    import shutil

    from stages.common.data.tfrecord_shards import Shards

    source, dataset = small_shards
    shards_dir = tmp_path / "shards"
    shutil.copytree(source, shards_dir)
    (shard,) = sorted(shards_dir.glob("val-*.tfrecord"))
    data = bytearray(shard.read_bytes())
    if damage == "truncated":
        data = data[:len(data) - 100]
    else:
        data[len(data) // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    shards = Shards.open(shards_dir, dataset)
    with pytest.raises(UserError, match=rf"{shards_dir}/val-\*.tfrecord: a shard is damaged .*"
                                        r"dvc checkout data/shards.*dvc repro -f shards"):
        list(shards.pixel_chunks("val", "student", 4))
    assert sum(len(c) for c in shards.pixel_chunks("test", "student", 4)) == 12  # others read


def test_a_damaged_manifest_or_dataset_json_is_named(small_shards, tmp_path):
    import json
    import shutil

    from stages.common.data.dataset import load_prepared
    from stages.common.data.tfrecord_shards import Shards

    source, dataset = small_shards
    shards_dir = tmp_path / "shards"
    shutil.copytree(source, shards_dir)
    manifest = shards_dir / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(UserError, match=rf"{manifest}: damaged .*dvc repro -f shards"):
        Shards.open(shards_dir, dataset)
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    text = json.dumps(dataset.to_json())
    for damaged in (text[:len(text) // 2], "[1, 2]", '{"classes": 3}'):
        (prepared / "dataset.json").write_text(damaged)
        with pytest.raises(UserError, match=rf"{prepared / 'dataset.json'}: damaged .*"
                                            r"dvc repro -f prepare"):
            load_prepared(prepared)


def test_damaged_weights_and_checkpoints_are_named(tmp_path):
    from stages.common.models.architectures import build_student
    from stages.common.models.fake_quant import (
        quantize_student,
        rebuild_qat_student,
        save_qat_weights,
    )
    from stages.common.models.trained_models import load_trained, save_trained

    student = build_student(3, input_size=32, dropout=0.3)
    save_trained(student, tmp_path / "student", "efficientnet_lite1", ["a", "b", "c"], 32, 0.3)
    weights = tmp_path / "student" / "weights.h5"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(UserError, match=rf"{weights}: cannot be loaded .*dvc repro -f "
                                        "train_student"):
        load_trained(tmp_path / "student")
    (tmp_path / "student" / "model.json").write_text('{"classes": ')
    with pytest.raises(UserError, match=r"model.json: damaged .*dvc repro -f train_student"):
        load_trained(tmp_path / "student")
    qat_dir = tmp_path / "qat"
    qat_dir.mkdir()
    save_qat_weights(quantize_student(student), qat_dir)
    (data,) = qat_dir.glob("weights.data-*")
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(UserError, match=r"the QAT checkpoint cannot be loaded .*dvc repro -f qat"):
        rebuild_qat_student(3, 32, 0.3, qat_dir)


def test_a_model_given_on_the_command_line_takes_its_data_with_it(tmp_path):
    """evaluate --model read the default prepared data behind it, and compare_quantization
    --qat the default thresholds and fidelity: one model scored with another's files. Now
    evaluate and thresholds take the data with the model, and compare_quantization takes no
    partial override."""
    (tmp_path / "params.yaml").write_text((Path(__file__).parents[2] / "params.yaml").read_text())
    for stage in ("evaluate", "thresholds"):
        result = subprocess.run([sys.executable, "-m", f"stages.{stage}", "--model", "m.tflite",
                                 "--prepared", str(tmp_path / "elsewhere"), "--shards",
                                 str(tmp_path / "shards")], cwd=tmp_path, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{tmp_path / 'elsewhere' / 'dataset.json'} not found" in result.stderr
    result = subprocess.run([sys.executable, "-m", "stages.compare_quantization", "--qat",
                             "m.tflite"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "unrecognized arguments: --qat" in result.stderr


def test_a_damaged_json_artefact_is_named_with_the_stage_that_writes_it(tmp_path):
    from stages.common.core.errors import read_json_file

    path = tmp_path / "thresholds.json"
    for content, problem in ((b'{"adopted": "glob', "damaged"), (b"\xff\xfe", "damaged")):
        path.write_bytes(content)
        with pytest.raises(UserError, match=rf"^{path}: {problem} .*dvc checkout {path}.*"
                                            r"dvc repro -f thresholds"):
            read_json_file(path, "thresholds")
    with pytest.raises(UserError, match=rf"^{tmp_path / 'absent.json'}: missing; it is written "
                                        "by the stage thresholds"):
        read_json_file(tmp_path / "absent.json", "thresholds")
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(UserError, match="not a regular file"):
        read_json_file(path, "thresholds")
    path.unlink()
    path.write_text('{"adopted": "global"}')
    assert read_json_file(path, "thresholds") == {"adopted": "global"}
