"""Importing ``stages`` first selects Keras 2 (tf_keras) before any test imports TensorFlow."""
import stages  # noqa: F401

# isort: split

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from stages.common.core.command_line import stage_process_env  # noqa: E402

# Stages run as modules (python -m stages.<name>), and tests run them from their own work folders,
# so this checkout must be on the path of every process a test starts; a project copy's own
# stages/ still comes first, since `python -m` puts the working folder ahead of PYTHONPATH.
os.environ["PYTHONPATH"] = stage_process_env()["PYTHONPATH"]


@pytest.fixture(scope="session")
def tiny_int8(tmp_path_factory):
    """A small student (5 classes, 64 px) briefly fitted, wrapped for QAT with its activation
    ranges calibrated on the fitted model, and exported to INT8 TFLite.

    Returns (qat_model, calibration pixels, tflite path, export report).

    The ranges are calibrated after fitting so that the int8 outputs vary from image to image:
    quantisers calibrated before a fit that moved the logits would clip every output to -128,
    and tests comparing outputs would then compare constants.
    """
    import tensorflow as tf

    from stages.common.data.preprocessing import normalize_student
    from stages.common.models.architectures import build_student
    from stages.common.models.fake_quant import calibrate_activation_ranges, quantize_student
    from stages.common.quantization.int8_export import export_int8

    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (48, 64, 64, 3), dtype=np.uint8)
    pixels[:, :16] = 0  # letterbox-like black borders
    targets = (rng.uniform(size=(48, 5)) < 0.4).astype(np.float32)
    student = build_student(5, input_size=64, dropout=0.3)
    student.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                    loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    student.fit(normalize_student(pixels), targets, epochs=2, batch_size=16, verbose=0)
    qat_model = quantize_student(student)
    calibrate_activation_ranges(student, qat_model, [normalize_student(pixels[:32])])
    path = tmp_path_factory.mktemp("int8") / "model_qat_int8.tflite"
    report = export_int8(qat_model, pixels[:32], path)
    return qat_model, pixels, path, report


@pytest.fixture(scope="session")
def config_corpus(tmp_path_factory):
    """The output-folder conformance corpus (tests/helpers/config_corpus.py), written once: a
    tiny real model, its folder, and each case's files and verdict."""
    from helpers.config_corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("config_corpus"))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory, tiny_int8):
    """A folder laid out like the repository after export (data/prepared, data/shards,
    models/export) on which thresholds, evaluate and package have run: (root, dataset)."""
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.demo_data import write_demo_dataset

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("workspace")
    write_demo_dataset(root / "demo", {"train": 24, "val": 12, "test": 12}, seed=11)
    dataset = validate_dataset(root / "demo", max_pixels=10**7)
    assert len(dataset.classes) == 5
    (root / "data" / "prepared").mkdir(parents=True)
    (root / "data" / "prepared" / "dataset.json").write_text(json.dumps(dataset.to_json()))
    from stages.common.data.tfrecord_shards import write_shards

    write_shards(dataset, root / "data" / "shards", {"student": 64})
    (root / "models" / "export").mkdir(parents=True)
    shutil.copyfile(tiny_int8[2], root / "models" / "export" / "model_qat_int8.tflite")
    shutil.copyfile(repo / "params.yaml", root / "params.yaml")
    for stage in ("thresholds", "evaluate", "package"):
        result = subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=root,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    return root, dataset


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """A 12 / 6 / 6 image demo dataset under ``<root>/data``, one for each test module."""
    from stages.common.data.demo_data import write_demo_dataset

    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root / "data", {"train": 12, "val": 6, "test": 6}, seed=3)
    return root


SLOWEST_FIRST = ("tests/training/test_learning_hard.py",)  # minutes of training in one file


def pytest_collection_modifyitems(items):
    # pytest-xdist (--dist loadfile) hands files out in this order: the longest one first runs
    # beside the rest instead of ending the run alone on one worker while the other sits idle
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in SLOWEST_FIRST)
