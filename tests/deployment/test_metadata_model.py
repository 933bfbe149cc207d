"""The model for MediaPipe Tasks (model_qat_int8_metadata.tflite): the shipped integer graph kept
whole, a float32 probability output that decides as the int8 thresholds do on every int8 value,
and MediaPipe's own ImageClassifier, in its own environment, giving predict.py's label sets.

The client environment is `.venv-mediapipe` (tests/clients/requirements.txt; .ci/run builds it) or
the interpreter MEDIAPIPE_PYTHON names. Without it the MediaPipe test is skipped, saying how to
build it, except where REQUIRE_PHONE_PATHS=1 (CI): there it fails.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tflite
from ai_edge_litert.interpreter import Interpreter
from helpers.c_app import varied_images
from PIL import Image

from stages.common.core.errors import UserError
from stages.common.data.preprocessing import decode_image, letterbox
from stages.common.deployment.deliverables import metadata_model_section
from stages.common.deployment.metadata_model import (
    METADATA_MODEL_FILE,
    read_metadata,
    read_model,
    score_threshold_problems,
    score_thresholds,
    tail_model,
    write_model,
)
from stages.common.quantization.int8_runtime import (
    INT8_VALUES,
    NEVER,
    Int8Model,
    int8_threshold,
    probability_table,
)

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "tests" / "clients" / "mediapipe_classify.py"


def _folder(workspace) -> Path:
    return workspace[0] / "outputs" / "run_001"


def test_the_integer_graph_is_kept_whole_and_two_float_ops_follow(workspace):
    folder = _folder(workspace)
    int8 = read_model((folder / "model_qat_int8.tflite").read_bytes())
    meta = read_model((folder / METADATA_MODEL_FILE).read_bytes())
    graph, meta_graph = int8.subgraphs[0], meta.subgraphs[0]
    for before, after in zip(int8.buffers, meta.buffers):
        assert (before.data is None and after.data is None) or np.array_equal(before.data,
                                                                             after.data)
    for before, after in zip(graph.tensors, meta_graph.tensors):
        assert (before.name, before.type, before.buffer) == (after.name, after.type, after.buffer)
        assert np.array_equal(before.shape, after.shape)
        if before.quantization is not None:
            assert np.array_equal(before.quantization.scale, after.quantization.scale)
            assert np.array_equal(before.quantization.zeroPoint, after.quantization.zeroPoint)
    code = {index: op.builtinCode for index, op in enumerate(meta.operatorCodes)}
    for before, after in zip(graph.operators, meta_graph.operators):
        assert code[after.opcodeIndex] == int8.operatorCodes[before.opcodeIndex].builtinCode
        assert np.array_equal(before.inputs, after.inputs)
        assert np.array_equal(before.outputs, after.outputs)
    added = meta_graph.operators[len(graph.operators):]
    assert [code[op.opcodeIndex] for op in added] == [tflite.BuiltinOperator.DEQUANTIZE,
                                                      tflite.BuiltinOperator.LOGISTIC]
    assert list(added[0].inputs) == list(graph.outputs)  # fed by the int8 logits
    assert list(meta_graph.outputs) == list(added[1].outputs)
    assert meta_graph.tensors[meta_graph.outputs[0]].type == tflite.TensorType.FLOAT32
    assert list(meta_graph.inputs) == list(graph.inputs)


def test_its_scores_are_the_sigmoid_of_the_int8_outputs(workspace):
    root, dataset = workspace
    folder = _folder(workspace)
    model = Int8Model.load(folder / "model_qat_int8.tflite")
    images = Path(dataset.dataset_dir) / "images"
    pixels = np.stack([letterbox(decode_image((images / r.name).read_bytes()), model.input_size)
                       for r in dataset.splits["test"]])
    expected = probability_table(model.output_scale, model.output_zero_point)[
        model.raw_outputs(pixels).astype(int) + 128]
    interpreter = Interpreter(model_path=str(folder / METADATA_MODEL_FILE))
    interpreter.allocate_tensors()
    scores = []
    for image in pixels:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        scores.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    np.testing.assert_allclose(np.array(scores), expected, rtol=0, atol=1e-7)


def test_the_labels_travel_inside_the_file(workspace):
    folder = _folder(workspace)
    metadata, files = read_metadata((folder / METADATA_MODEL_FILE).read_bytes())
    assert metadata[4:8] == b"M001"  # the TFLite metadata schema's file identifier
    assert files == {"labels.txt": (folder / "labels.txt").read_bytes()}
    _, none = read_metadata((folder / "model_qat_int8.tflite").read_bytes())
    assert none == {}  # the shipped INT8 model stays as it was


def _scores_of_every_int8_value(metadata_model: bytes, classes: int, scale: float,
                                zero_point: int) -> np.ndarray:
    """[256, classes] float32 scores the model's DEQUANTIZE and LOGISTIC give each int8 value,
    run by LiteRT, under the output quantisation (scale, zero_point)."""
    tail = read_model(tail_model(metadata_model, 2))
    logits = tail.subgraphs[0].tensors[tail.subgraphs[0].inputs[0]]
    logits.quantization.scale = np.array([scale], dtype=np.float32)
    logits.quantization.zeroPoint = np.array([zero_point], dtype=np.int64)
    interpreter = Interpreter(model_content=write_model(tail))
    interpreter.allocate_tensors()
    scores = []
    for value in INT8_VALUES:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               np.full((1, classes), value, dtype=np.int8))
        interpreter.invoke()
        scores.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    return np.array(scores)


def _demo_output_quantization() -> tuple[float, int]:
    """The committed demo model's output quantisation (metrics/export.json, tied by dvc.lock)."""
    output = json.loads((REPO / "metrics" / "export.json").read_text())["output"]
    return output["scale"], output["zero_point"]


@pytest.mark.parametrize("quantization", ["packaged", "demo"])
def test_every_int8_value_decides_as_its_int8_threshold(workspace, quantization):
    """Exhaustive: every int8 output value (256), every threshold the grid can give (0.05 to
    0.95 by 0.01) and the always and never thresholds; the scores are the model's own float
    ops run by LiteRT. For the packaged folder, its config's score thresholds too."""
    folder = _folder(workspace)
    config = json.loads((folder / "inference_config.json").read_text())
    classes = len(config["labels"]["classes"])
    if quantization == "demo":
        scale, zero_point = _demo_output_quantization()
    else:
        scale, zero_point = (config["output"]["quantization"][k] for k in ("scale", "zero_point"))
    scores = _scores_of_every_int8_value((folder / METADATA_MODEL_FILE).read_bytes(), classes,
                                         scale, zero_point)
    grid = [int8_threshold(p, scale, zero_point) for p in np.round(np.arange(5, 96) / 100, 2)]
    thresholds = sorted(set(grid) | {-128, NEVER})
    assert len(thresholds) > 40  # the grid gives many distinct int8 thresholds
    wrong = []
    for q, score in zip(thresholds, score_thresholds(thresholds, scale, zero_point)):
        for column in range(classes):
            differ = (scores[:, column] >= score) != (INT8_VALUES >= q)
            wrong += [f"int8 threshold {q}, value {v}" for v in INT8_VALUES[differ]]
    assert not wrong, wrong[:10]
    assert not score_threshold_problems(score_thresholds(thresholds, scale, zero_point),
                                        thresholds, scale, zero_point)
    if quantization == "packaged":
        rows = config["thresholds"]["classes"]
        for column, (row, score) in enumerate(zip(rows, config["metadata_model"]
                                                  ["score_thresholds"])):
            assert np.array_equal(scores[:, column] >= score, INT8_VALUES >= row["int8"])


def test_a_threshold_the_float_output_cannot_carry_is_refused(workspace):
    """With logits so coarse that sigmoid saturates in float32, neighbouring int8 values get the
    same score and no score threshold can separate them: package says so, naming the file."""
    config = json.loads((_folder(workspace) / "inference_config.json").read_text())
    config["output"]["quantization"] = {"scale": 0.5, "zero_point": 0}
    for row in config["thresholds"]["classes"]:
        row["int8"] = 127  # sigmoid(63) and sigmoid(63.5) are both 1.0 in float32
    assert score_threshold_problems(score_thresholds([127], 0.5, 0), [127], 0.5, 0)
    with pytest.raises(UserError, match=f"{METADATA_MODEL_FILE}: the float output cannot carry"):
        metadata_model_section(config, _folder(workspace) / METADATA_MODEL_FILE)


def _mediapipe_python() -> str:
    python = os.environ.get("MEDIAPIPE_PYTHON") or str(REPO / ".venv-mediapipe" / "bin" / "python")
    if not Path(python).exists():
        reason = ("MediaPipe's client environment is missing: python3 -m venv .venv-mediapipe && "
                  ".venv-mediapipe/bin/pip install -r tests/clients/requirements.txt")
        if os.environ.get("REQUIRE_PHONE_PATHS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return python


def test_mediapipe_image_classifier_gives_predict_py_label_sets(workspace, tmp_path):
    """MediaPipe Tasks' ImageClassifier (the client Android and iOS apps use) loads the file as
    it is, names the classes from its metadata, and, on 54 images letterboxed by our letterbox
    (so its own resize does nothing), gives scores within 1e-7 of the float64 sigmoid of the
    int8 outputs and, at the config's score thresholds, predict.py's label sets."""
    python = _mediapipe_python()
    root, dataset = workspace
    folder = _folder(workspace)
    config = json.loads((folder / "inference_config.json").read_text())
    classes = config["labels"]["classes"]
    model = Int8Model.load(folder / "model_qat_int8.tflite")
    originals = varied_images(dataset, tmp_path)
    letterboxed = []
    for path in originals:
        pixels = letterbox(decode_image(path.read_bytes()), model.input_size)
        letterboxed.append(tmp_path / f"{path.stem}_letterboxed.png")
        Image.fromarray(pixels).save(letterboxed[-1])
    result = subprocess.run([python, str(CLIENT), str(folder / METADATA_MODEL_FILE),
                             *map(str, letterboxed)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout)
    assert len(answers) == len(originals) >= 50
    predicted = subprocess.run([sys.executable, "-m", "tools.predict", str(folder),
                                *map(str, originals), "--json"], capture_output=True, text=True)
    assert predicted.returncode == 0, predicted.stderr
    expected_labels = [[label["class"] for label in r["labels"]]
                       for r in json.loads(predicted.stdout)]
    int8 = model.raw_outputs(np.stack([np.asarray(Image.open(p)) for p in letterboxed]))
    expected_scores = probability_table(model.output_scale, model.output_zero_point)[
        int8.astype(int) + 128]
    score_thresholds_ = config["metadata_model"]["score_thresholds"]
    for answer, labels, expected in zip(answers, expected_labels, expected_scores):
        assert answer["head"] == "probability"
        by_index = {c["index"]: c for c in answer["categories"]}
        assert [by_index[i]["name"] for i in range(len(classes))] == classes  # from the metadata
        scores = np.array([by_index[i]["score"] for i in range(len(classes))])
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-7, err_msg=answer["image"])
        assert [name for name, score, threshold in zip(classes, scores, score_thresholds_)
                if score >= threshold] == labels, answer["image"]


def test_mediapipe_reads_the_metadata_back(workspace):
    """Read with the schema code MediaPipe ships: name, version, description with provenance,
    the input as an RGB image of the model's size, the output's labels file."""
    python = _mediapipe_python()
    folder = _folder(workspace)
    config = json.loads((folder / "inference_config.json").read_text())
    result = subprocess.run([python, str(CLIENT), "--metadata", str(folder / METADATA_MODEL_FILE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    metadata = json.loads(result.stdout)
    assert metadata["name"] == "multi-label image classifier"
    assert metadata["min_parser_version"] == "1.0.0"
    commit = config["provenance"]["git_commit"]
    assert metadata["version"].startswith(commit[:12] if commit else "no git commit")
    assert config["provenance"]["dataset_fingerprint"] in metadata["description"]
    assert config["model"]["sha256"] in metadata["description"]
    [image], [output] = metadata["inputs"], metadata["outputs"]
    size = config["input"]["height"]
    assert (image["content_type"], image["color_space"], image["size"]) == (2, 1, [size, size])
    assert image["stats"] == {"min": [0.0], "max": [255.0]}  # ImageProperties, RGB, uint8
    assert output["name"] == "probability" and output["stats"] == {"min": [0.0], "max": [1.0]}
    assert output["associated_files"] == [{"name": "labels.txt", "type": 2}]  # TENSOR_AXIS_LABELS
