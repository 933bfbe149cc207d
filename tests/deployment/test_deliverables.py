"""Thresholds, evaluation and packaging stages on a tiny INT8 model; the predict CLI."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stages.common.core.errors import UserError
from stages.common.core.hashing import file_sha256
from stages.common.data.image_files import load_image
from stages.common.data.preprocessing import letterbox
from stages.common.deployment.deliverables import PACKAGED_FILES, write_outputs
from stages.common.deployment.predictor import Predictor
from stages.common.quantization.int8_runtime import Int8Model

REPO = Path(__file__).resolve().parents[2]


def test_package_holds_exactly_the_five_outputs_and_the_metadata_model(workspace):
    root, dataset = workspace
    out = root / "outputs" / "run_001"
    assert sorted(p.name for p in out.iterdir()) == sorted(PACKAGED_FILES)
    listed = json.loads((out / "inference_config.json").read_text())["metadata_model"]
    assert listed["file"] == "model_qat_int8_metadata.tflite"
    assert listed["sha256"] == file_sha256(out / listed["file"])
    assert listed["bytes"] == (out / listed["file"]).stat().st_size
    assert (out / "labels.txt").read_text().splitlines() == dataset.classes
    config = json.loads((out / "inference_config.json").read_text())
    assert config["input"]["quantization"] == {"scale": 1 / 128, "zero_point": 127}
    assert config["input"]["dtype"] == "uint8" and config["input"]["color_order"] == "RGB"
    assert config["output"]["dtype"] == "int8"
    assert config["labels"]["classes"] == dataset.classes
    assert config["preprocessing"]["letterbox"]["size"] == 64
    assert config["provenance"]["dataset_fingerprint"] == dataset.fingerprint()
    recommendation = json.loads((out / "threshold_recommendation.json").read_text())
    assert {"global_threshold", "per_class_thresholds", "val_f1_macro_global",
            "val_f1_macro_per_class"} <= set(recommendation)


def _packaged_run(workspace, split: str):
    """(output folder, dataset, config, model, its int8 outputs on the split's images decoded
    and letterboxed here, the split's targets)."""
    root, dataset = workspace
    out = root / "outputs" / "run_001"
    config = json.loads((out / "inference_config.json").read_text())
    model = Int8Model.load(out / "model_qat_int8.tflite")
    images = Path(dataset.dataset_dir) / "images"
    pixels = np.stack([letterbox(load_image(images / r.name), 64) for r in dataset.splits[split]])
    return (out, dataset, config, model, model.raw_outputs(pixels),
            np.array(dataset.targets(split), dtype=bool))


def test_adopted_thresholds_follow_from_the_val_scores(workspace):
    """The val scores recomputed here from the packaged model decide global or per class
    (more than 0.5 points of macro-F1), and the config carries the adopted values."""
    from stages.common.scoring.metrics import f1_macro

    out, dataset, config, model, raw, truth = _packaged_run(workspace, "val")
    recommendation = json.loads((out / "threshold_recommendation.json").read_text())
    probabilities = model.probabilities(raw)
    global_threshold = recommendation["global_threshold"]
    candidates = [
        recommendation["candidate_per_class_thresholds"][name] for name in dataset.classes
    ]
    global_score = f1_macro(truth, probabilities >= global_threshold)
    per_class_score = f1_macro(truth, probabilities >= np.array(candidates))
    assert recommendation["val_f1_macro_global"] == pytest.approx(global_score)
    assert recommendation["val_f1_macro_per_class"] == pytest.approx(per_class_score)
    expected = "per_class" if per_class_score - global_score > 0.005 else "global"
    assert recommendation["adopted"] == expected
    adopted = candidates if expected == "per_class" else [global_threshold] * len(candidates)
    assert [row["probability"] for row in config["thresholds"]["classes"]] == pytest.approx(adopted)


def test_the_thresholds_stage_checks_adoption_as_the_params_say(workspace, tmp_path):
    """threshold_search.adoption_check and folds reach the stage: its recommendation is the
    held-out check's on the val outputs recomputed here."""
    import yaml

    from stages.common.scoring.threshold_search import search_thresholds, threshold_grid

    root, _ = workspace
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["threshold_search"].update(adoption_check="cross_validated", folds=3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, "-m", "stages.thresholds", "--params",
                             tmp_path / "params.yaml", "--out", tmp_path / "thresholds.json",
                             "--curve", tmp_path / "curve.csv"],
                            cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "thresholds.json").read_text())
    out, dataset, config, model, raw, truth = _packaged_run(workspace, "val")
    expected = search_thresholds(truth, model.probabilities(raw), threshold_grid(0.05, 0.95, 0.01),
                                 dataset.classes, check="cross_validated", folds=3)
    assert written["adoption_check"] == "cross_validated" and written["folds"] == 3
    for key in ("adopted", "per_class_thresholds", "global_threshold",
                "cross_validated_improvement_points"):
        assert written[key] == expected[key]


def test_metrics_are_exactly_what_the_int8_outputs_give(workspace):
    out, dataset, config, model, raw, truth = _packaged_run(workspace, "test")
    metrics = json.loads((out / "metrics.json").read_text())
    raw = raw.astype(np.int64)
    int8_thresholds = np.array([row["int8"] for row in config["thresholds"]["classes"]])
    predicted = raw >= int8_thresholds  # the phone's rule, no sigmoid
    scale, zero = (
        config["output"]["quantization"]["scale"],
        config["output"]["quantization"]["zero_point"],
    )
    probabilities = 1 / (1 + np.exp(-(raw - zero) * scale))
    thresholds = np.array([row["probability"] for row in config["thresholds"]["classes"]])
    assert np.array_equal(predicted, probabilities >= thresholds)
    for i, row in enumerate(metrics["per_class"]):
        tp = int(np.sum(predicted[:, i] & truth[:, i]))
        fp = int(np.sum(predicted[:, i] & ~truth[:, i]))
        fn = int(np.sum(~predicted[:, i] & truth[:, i]))
        assert row["support"] == tp + fn and row["threshold"] == thresholds[i]
        assert row["f1"] == (2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0)
    present = truth.any(axis=0)
    assert metrics["f1_macro"] == pytest.approx(
        np.mean([r["f1"] for r, p in zip(metrics["per_class"], present) if p]), abs=1e-15)
    assert metrics["no_label_rate_predicted"] == np.mean(~predicted.any(axis=1))
    assert metrics["no_label_rate_true"] == np.mean(~truth.any(axis=1))


def test_predict_cli_uses_only_the_outputs(workspace):
    root, dataset = workspace
    out = root / "outputs" / "run_001"
    image = Path(dataset.dataset_dir) / "images" / dataset.splits["test"][0].name
    result = subprocess.run([sys.executable, "-m", "tools.predict", str(out),
                             str(image), "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (prediction,) = json.loads(result.stdout)
    expected = Predictor.load(out).predict_pixels(letterbox(load_image(image), 64)[None])[0]
    assert prediction["labels"] == expected["labels"]
    assert set(prediction["probabilities"]) == set(dataset.classes)
    missing = subprocess.run([sys.executable, "-m", "tools.predict", str(out),
                              str(root / "nope.jpg")], capture_output=True, text=True)
    assert missing.returncode == 1 and "nope.jpg: error: cannot be read" in missing.stdout
    assert "Traceback" not in missing.stderr


def test_predictor_refuses_files_that_do_not_belong_together(workspace, tmp_path):
    root, _ = workspace
    copy = tmp_path / "copy"
    shutil.copytree(root / "outputs" / "run_001", copy)
    with open(copy / "model_qat_int8.tflite", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(UserError, match="field model.bytes says"):
        Predictor.load(copy)
    data = bytearray((root / "outputs" / "run_001" / "model_qat_int8.tflite").read_bytes())
    data[len(data) // 2] ^= 1
    (copy / "model_qat_int8.tflite").write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256 differs"):
        Predictor.load(copy)
    with pytest.raises(UserError, match="not found"):
        Predictor.load(tmp_path / "empty")


def _recommendation(root):
    return json.loads((root / "metrics" / "thresholds.json").read_text())


def _metrics(root, **changed):
    return {**json.loads((root / "metrics" / "evaluation.json").read_text()), **changed}


def _snapshot(folder: Path) -> dict:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_write_outputs_refuses_a_folder_that_is_not_an_earlier_output(
    workspace, tmp_path, tiny_int8
):
    root, dataset = workspace
    out = tmp_path / "Documents"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    with pytest.raises(UserError, match="not empty and does not hold an earlier output"):
        write_outputs(
            out, tiny_int8[2], dataset.classes, {"f1_macro": 0.0}, _recommendation(root), {}
        )
    assert _snapshot(out) == {"thesis.txt": b"years of work"}
    # one foreign file beside the five outputs is enough to refuse: it is not ours to delete
    shutil.copytree(root / "outputs" / "run_001", tmp_path / "run")
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and does not hold"):
        write_outputs(
            tmp_path / "run", tiny_int8[2], dataset.classes, {}, _recommendation(root), {}
        )
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_write_outputs_replaces_an_earlier_output_whole(workspace, tmp_path, tiny_int8):
    root, dataset = workspace
    out = tmp_path / "run"
    shutil.copytree(root / "outputs" / "run_001", out)
    (out / "metrics.json").unlink()  # an older, smaller output is still ours
    write_outputs(out, tiny_int8[2], dataset.classes, _metrics(root, f1_macro=0.25),
                  _recommendation(root), {})
    assert sorted(p.name for p in out.iterdir()) == sorted(PACKAGED_FILES)
    assert json.loads((out / "metrics.json").read_text()) == _metrics(root, f1_macro=0.25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder left


def test_a_failure_while_packaging_leaves_the_previous_outputs(workspace, tmp_path, tiny_int8,
                                                               monkeypatch):
    root, dataset = workspace
    out = tmp_path / "run"
    shutil.copytree(root / "outputs" / "run_001", out)
    before = _snapshot(out)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("stages.common.deployment.deliverables.inference_config", broken)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(out, tiny_int8[2], dataset.classes, _metrics(root), _recommendation(root), {})
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


KILLED_WHILE_PACKAGING = """
import os, runpy, signal, sys
repo = sys.argv[1]
sys.path.insert(0, repo)
import stages.common.deployment.deliverables as package


def killed(*args, **kwargs):  # halfway: four of the five files are written
    os.kill(os.getpid(), signal.SIGKILL)


package.inference_config = killed
sys.argv = ["stages.package"]
runpy.run_module("stages.package", run_name="__main__")
"""


def test_package_stage_killed_halfway_leaves_the_previous_outputs(workspace, tmp_path):
    root, _ = workspace
    out = root / "outputs" / "run_001"
    before = _snapshot(out)
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_PACKAGING, str(REPO)], cwd=root,
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert _snapshot(out) == before
    leftovers = [p.name for p in out.parent.iterdir() if p.name != "run_001"]
    assert leftovers and all(name.startswith(".run_001.writing-") for name in leftovers)
    again = subprocess.run([sys.executable, "-m", "stages.package"], cwd=root,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert _snapshot(out) == before  # same inputs, same six files
    assert [p.name for p in out.parent.iterdir()] == ["run_001"]  # the leftover is cleaned up


def test_package_stage_refuses_an_output_dir_holding_other_files(workspace, tmp_path):
    root, _ = workspace
    params = (root / "params.yaml").read_text().replace("dir: outputs/run_001",
                                                        f"dir: {tmp_path / 'home'}")
    (tmp_path / "params.yaml").write_text(params)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "photo.jpg").write_bytes(b"precious")
    result = subprocess.run(
        [sys.executable, "-m", "stages.package", "--params", str(tmp_path / "params.yaml")],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'home'}: this folder is not empty" in result.stderr
    assert (tmp_path / "home" / "photo.jpg").read_bytes() == b"precious"


def test_evaluate_lists_the_test_images_it_gets_wrong_and_the_gallery_shows_them(workspace):
    """metrics/test_errors.json against the packaged model's own decisions on test, and the
    report's thumbnails: the letterboxed test images, read back from the shards."""
    from stages.common.evaluation.report import error_thumbnails
    from stages.common.evaluation.report_charts import gallery_png
    from stages.common.evaluation.run_results import RunFiles

    root, _ = workspace
    out, dataset, config, model, raw, truth = _packaged_run(workspace, "test")
    errors = json.loads((root / "metrics" / "test_errors.json").read_text())
    thresholds = np.array([row["probability"] for row in config["thresholds"]["classes"]])
    predicted = model.probabilities(raw) >= thresholds
    wrong = [i for i in range(len(truth)) if (predicted[i] != truth[i]).any()]
    assert wrong and errors["total"] == len(wrong)
    assert [entry["index"] for entry in errors["images"]] == wrong[:24]
    records = dataset.splits["test"]
    for entry in errors["images"]:
        i = entry["index"]
        assert entry["image"] == records[i].name
        assert [e["class"] for e in entry["false_positives"]] == [
            name for name, p, t in zip(dataset.classes, predicted[i], truth[i]) if p and not t]
        assert [e["class"] for e in entry["false_negatives"]] == [
            name for name, p, t in zip(dataset.classes, predicted[i], truth[i]) if t and not p]
        assert all(e["score"] >= e["threshold"] for e in entry["false_positives"])
        assert all(e["score"] < e["threshold"] for e in entry["false_negatives"])
    files = RunFiles(root / "metrics", root / "dvclive", root / "data" / "shards",
                     root / "data" / "prepared")
    thumbnails = error_thumbnails(files, wrong[:3])
    images = Path(dataset.dataset_dir) / "images"
    for i, pixels in zip(wrong[:3], thumbnails):
        np.testing.assert_array_equal(pixels, letterbox(load_image(images / records[i].name), 64))
    assert len(thumbnails) == min(3, len(wrong))
    assert gallery_png(thumbnails, errors["images"][:3]).startswith(b"\x89PNG")
