"""predict and letterbox on bad input: a clear message naming the file and the field or line,
never a traceback, and one bad image never costs the others their results."""
import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from stages.common.core.errors import UserError
from stages.common.deployment.predictor import Predictor
from stages.common.quantization.int8_runtime import int8_threshold

REPO = Path(__file__).resolve().parents[2]


def _predict(*args):
    return subprocess.run([sys.executable, "-m", "tools.predict", *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture
def outputs(workspace, tmp_path):
    """A copy of the packaged outputs to damage, and one test image of the workspace."""
    root, dataset = workspace
    copy = tmp_path / "run"
    shutil.copytree(root / "outputs" / "run_001", copy)
    image = Path(dataset.dataset_dir) / "images" / dataset.splits["test"][0].name
    return copy, image


def _huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (the pixel data is a few bytes)."""
    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def test_an_oversized_image_is_its_own_error_and_the_others_get_results(outputs, tmp_path):
    out, image = outputs
    huge = tmp_path / "huge.png"
    huge.write_bytes(_huge_png_header(60000, 60000))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8 not really a jpeg")
    result = _predict(out, huge, image, garbage, "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    first, second, third = json.loads(result.stdout)
    assert first["image"] == str(huge)
    assert first["error"] == ("60000x60000 = 3600000000 pixels exceeds the limit of 50000000 "
                              "(--max_image_pixels)")
    assert second["image"] == str(image) and "labels" in second and "error" not in second
    assert third["error"] == ("not an accepted image format (JPEG, PNG, BMP, WebP, TIFF, binary "
                              "PPM/PGM): it starts with b'\\xff\\xd8 not r'")
    # above OpenCV's own limit but allowed by ours: OpenCV's refusal is still the image's error
    allowed = _predict(out, huge, image, "--max_image_pixels", 4_000_000_000)
    assert allowed.returncode == 1 and "Traceback" not in allowed.stderr
    assert f"{huge}: error: cannot be decoded:" in allowed.stdout
    assert f"{image}: " in allowed.stdout


def _damage(out: Path, change) -> Path:
    path = out / "inference_config.json"
    config = json.loads(path.read_text())
    changed = change(config)
    path.write_text(json.dumps(config if changed is None else changed, indent=2))
    return path


def _drop_sha(config):
    del config["model"]["sha256"]


def _rows(count):
    def change(config):
        config["thresholds"]["classes"] = config["thresholds"]["classes"][:count]
    return change


def _set(section, key, value):
    def change(config):
        config[section][key] = value
    return change


def _first_threshold(value):
    def change(config):
        config["thresholds"]["classes"][0]["int8"] = value
    return change


def _requantised(scale, zero_point):
    """Another output quantisation, with the int8 thresholds its probabilities then give."""
    def change(config):
        config["output"]["quantization"] = {"scale": scale, "zero_point": zero_point}
        for row in config["thresholds"]["classes"]:
            row["int8"] = int8_threshold(row["probability"], scale, zero_point)
    return change


def _input_size(size):
    def change(config):
        config["input"].update(shape=[1, size, size, 3], height=size, width=size)
    return change


@pytest.mark.parametrize(
    "change, expected",
    [
        (_drop_sha, "field model.sha256 is missing"),
        (lambda config: [config], "field (top level) must be of type object, got ["),
        (
            _first_threshold(3.5),
            "field thresholds.classes[0].int8 must be of type integer, got 3.5",
        ),
        (
            _first_threshold("12"),
            "field thresholds.classes[0].int8 must be of type integer, got '12'",
        ),
        (
            _first_threshold(200),
            "field thresholds.classes[0].int8 200 is greater than the maximum of 128",
        ),
        (_rows(1), "field thresholds.classes has 1 row(s) for 5 classes"),
        (_input_size(32), "field input.height is 32 but the model has 64"),
        (_requantised(0.5, 0), "field output.quantization.scale is 0.5 but the model has"),
        (
            _set("output", "quantization", {"scale": 0.5, "zero_point": 0}),
            "field thresholds.classes[0].int8 is",
        ),  # the thresholds no longer follow from it
        (
            lambda config: {**config, "format_version": 2},
            "field format_version is 2; this reader knows version 1 only",
        ),
        (_set("labels", "classes", "circle"), "field labels.classes must be of type array"),
    ],
)
def test_a_damaged_config_names_the_file_and_the_field(outputs, change, expected):
    out, image = outputs
    config_path = _damage(out, change)
    with pytest.raises(UserError) as caught:
        Predictor.load(out)
    assert f"{config_path}: {expected}" in str(caught.value)
    result = _predict(out, image)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr


def test_a_config_that_is_not_utf8_or_not_json_names_the_line(outputs):
    out, image = outputs
    path = out / "inference_config.json"
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:3] + [lines[3] + b"\xff"] + lines[4:]))
    result = _predict(out, image)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}:4: not valid UTF-8 text" in result.stderr
    path.write_text('{"format_version": 1,\n  "model": }')
    result = _predict(out, image)
    assert result.returncode == 2 and f"{path}:2: invalid JSON" in result.stderr


def test_missing_files_and_labels_that_disagree(outputs, tmp_path):
    out, image = outputs
    labels = (out / "labels.txt").read_text()
    (out / "labels.txt").write_text(labels[: labels.rindex("\n", 0, -1) + 1])  # one class fewer
    result = _predict(out, image)
    assert (
        result.returncode == 2
        and "labels.txt disagrees with inference_config.json" in result.stderr
    )
    (out / "labels.txt").write_text(labels)
    (out / "model_qat_int8.tflite").unlink()
    result = _predict(out, image)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{out / 'model_qat_int8.tflite'}: model file not found" in result.stderr
    result = _predict(tmp_path / "nowhere", image)
    assert result.returncode == 2 and f"{tmp_path / 'nowhere'}: folder not found" in result.stderr


def test_letterbox_cli_names_a_missing_output_folder(workspace, tmp_path):
    root, dataset = workspace
    image = Path(dataset.dataset_dir) / "images" / dataset.splits["test"][0].name
    target = tmp_path / "no" / "such" / "folder" / "out.png"
    result = subprocess.run([sys.executable, "-m", "tools.letterbox", str(image),
                             str(target)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{target.parent}: output folder not found" in result.stderr
    written = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.letterbox",
            str(image),
            str(tmp_path / "out.png"),
            "--size",
            "32",
        ],
        capture_output=True,
        text=True,
    )
    assert written.returncode == 0 and (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"


def test_letterbox_cli_refuses_an_oversized_image_by_its_header(tmp_path):
    huge = tmp_path / "huge.png"
    huge.write_bytes(_huge_png_header(60000, 60000))
    result = subprocess.run([sys.executable, "-m", "tools.letterbox", str(huge),
                             str(tmp_path / "out.png")], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{huge}: 60000x60000 = 3600000000 pixels exceeds the limit" in result.stderr
