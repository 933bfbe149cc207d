"""The five mandatory outputs and inference_config.json, everything the phone's C code needs;
beside them, the same model for MediaPipe Tasks (metadata_model.py)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from stages.common.core.errors import UserError
from stages.common.core.hashing import file_sha256
from stages.common.core.json_files import write_json
from stages.common.core.output_folders import check_replaceable, replaced_folder
from stages.common.data.dataset import write_labels
from stages.common.data.preprocessing import STUDENT_SCALE, STUDENT_ZERO_POINT, preprocessing_spec
from stages.common.deployment.inference_config import (
    CONFIG_FILE,
    FORMAT_VERSION,
    LABELS_FILE,
    MODEL_FILE,
    check_model_against_config,
    validate_inference_config,
)
from stages.common.deployment.metadata_model import (
    METADATA_MODEL_FILE,
    metadata_flatbuffer,
    probability_model,
    score_threshold_problems,
    score_thresholds,
    with_metadata,
)
from stages.common.quantization.int8_runtime import KERNEL_PATHS, NEVER, Int8Model
from stages.common.scoring.threshold_search import adopted_thresholds

METRICS_FILE = "metrics.json"
THRESHOLDS_FILE = "threshold_recommendation.json"
OUTPUT_FILES = (MODEL_FILE, LABELS_FILE, METRICS_FILE, THRESHOLDS_FILE, CONFIG_FILE)
PACKAGED_FILES = OUTPUT_FILES + (METADATA_MODEL_FILE,)  # the seed's five, and the MediaPipe model


def git_state(repository: str | Path = ".") -> dict:
    def git(*args):
        result = subprocess.run(["git", *args], cwd=repository, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit,
        "git_uncommitted_changes": bool(status) if status is not None else None,
    }


def kernels_section(kernel_paths: dict) -> dict:
    """Which CPU kernels the thresholds and metrics were measured on, and how far the others are
    (from the evaluate stage's report)."""
    adopted = kernel_paths["adopted"]
    return {
        "tuned_and_evaluated_on": adopted,
        "description": KERNEL_PATHS[adopted][1],
        "advice": "run the model on this path to get the measured decisions; other kernels or "
                  "delegates round differently and give int8 outputs a few steps away",
        "other_paths_on_test": {
            name: {"description": KERNEL_PATHS[name][1],
                   **{key: path[key] for key in ("differing_outputs", "max_difference",
                                                 "differing_label_sets", "f1_macro_change",
                                                 "material")}}
            for name, path in kernel_paths["paths"].items()},
        "material_rule": kernel_paths["rule"],
    }


def inference_config(model: Int8Model, model_sha256: str, classes: list[str],
                     recommendation: dict, provenance: dict, kernel_paths: dict) -> dict:
    thresholds = adopted_thresholds(recommendation, classes)
    int8_thresholds = model.thresholds_int8(thresholds)
    return {
        "format_version": FORMAT_VERSION,
        "model": {
            "file": MODEL_FILE,
            "sha256": model_sha256,
            "bytes": model.path.stat().st_size,
            "runtime": "TFLite / LiteRT, builtin INT8 operators only",
        },
        "input": {
            "shape": [1, model.input_size, model.input_size, 3],
            "layout": "NHWC",
            "height": model.input_size,
            "width": model.input_size,
            "channels": 3,
            "color_order": "RGB",
            "dtype": "uint8",
            "quantization": {"scale": model.input_scale, "zero_point": model.input_zero_point},
            "meaning": f"the letterboxed pixels as they are; the model sees (x - "
            f"{STUDENT_ZERO_POINT:g}) / {STUDENT_SCALE:g} through its input quantisation",
        },
        "preprocessing": preprocessing_spec(model.input_size),
        "output": {
            "shape": [1, len(classes)],
            "dtype": "int8",
            "quantization": {"scale": model.output_scale, "zero_point": model.output_zero_point},
            "meaning": "quantised logits, one per class in labels order; logit = (q - zero_point) "
            "* scale; probability = sigmoid(logit), independently per class "
            "(multi-label: not a softmax)",
        },
        "labels": {
            "file": LABELS_FILE,
            "order": "output index i is line i + 1",
            "classes": classes,
        },
        "thresholds": {
            "adopted": recommendation["adopted"],
            "decision_rule": "predict class i when probability_i >= threshold_i, equivalently "
            "when q_i >= int8_threshold_i (no sigmoid needed on the phone); "
            f"an int8 threshold of {NEVER} means the class is never predicted",
            "classes": [
                {"class": name, "probability": t, "int8": q}
                for name, t, q in zip(classes, thresholds, int8_thresholds)
            ],
            "empty_prediction": "an image may get no label at all (multi-label)",
        },
        "kernels": kernels_section(kernel_paths),
        "provenance": provenance,
    }


OUTPUT_KIND = "an earlier output of this pipeline (only its files)"


def is_packaged_output(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier output of ``write_outputs``, and nothing else: its
    names at most, and an inference_config.json of ours (format_version, provenance)."""
    names = {path.name for path in folder.iterdir()}
    if not names <= set(PACKAGED_FILES) or CONFIG_FILE not in names:
        return False
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"format_version", "provenance"} <= set(config)


def check_output_folder(out_dir: str | Path) -> None:
    """UserError unless ``out_dir`` is new, empty or an earlier output (before a long run)."""
    check_replaceable(out_dir, is_packaged_output, OUTPUT_KIND)


def metadata_model_section(config: dict, model_path: Path) -> dict:
    """inference_config.json's description of the MediaPipe model at ``model_path``: its file,
    and the score thresholds that decide on its float output as the int8 thresholds do."""
    quantization = config["output"]["quantization"]
    int8 = [row["int8"] for row in config["thresholds"]["classes"]]
    scores = score_thresholds(int8, quantization["scale"], quantization["zero_point"])
    problems = score_threshold_problems(scores, int8, quantization["scale"],
                                        quantization["zero_point"])
    if problems:
        raise UserError(f"{METADATA_MODEL_FILE}: the float output cannot carry these thresholds: "
                        + "; ".join(problems))
    return {
        "file": METADATA_MODEL_FILE, "sha256": file_sha256(model_path),
        "bytes": model_path.stat().st_size,
        "for": "MediaPipe Tasks' ImageClassifier and the LiteRT (TFLite) Task Library: TFLite "
               "metadata names the input image (RGB, uint8) and carries labels.txt",
        "graph": f"{MODEL_FILE}'s integer graph unchanged, then DEQUANTIZE and LOGISTIC: the "
                 "output is float32 sigmoid((q - zero_point) * scale) per class",
        "decision_rule": "predict class i when score_i >= score_thresholds[i]; this decides as "
                         "q_i >= int8 threshold i on every int8 value (each score threshold lies "
                         "halfway between the scores of the int8 values either side); 0 means "
                         "always, 2 never",
        "score_thresholds": scores,
        "preprocessing": "letterbox as `preprocessing` says before classify(): the classifier's "
                         "own resize then does nothing; on an image of another size it would "
                         "stretch it, without the letterbox's borders",
    }


def _metadata_model(int8_model: Path, labels: Path, classes: list[str], provenance: dict,
                    input_size: int) -> bytes:
    commit = provenance.get("git_commit")
    version = (commit[:12] + ("+uncommitted" if provenance.get("git_uncommitted_changes") else "")
               if commit else "no git commit")
    description = (f"Multi-label image classifier, {len(classes)} classes: each is predicted on "
                   "its own when its score reaches its threshold (inference_config.json, "
                   "metadata_model.score_thresholds). Provenance: git commit "
                   f"{commit or 'none'}, params sha256 {provenance.get('params_sha256')}, "
                   f"dataset fingerprint {provenance.get('dataset_fingerprint')}, INT8 model "
                   f"sha256 {file_sha256(int8_model)}.")
    metadata = metadata_flatbuffer(name="multi-label image classifier", description=description,
                                   version=version, author="on-device multi-label pipeline",
                                   input_size=input_size, labels_file=LABELS_FILE,
                                   num_classes=len(classes))
    return with_metadata(probability_model(int8_model.read_bytes()), metadata,
                         {LABELS_FILE: labels.read_bytes()})


def write_outputs(out_dir: str | Path, model_path: Path, classes: list[str], metrics: dict,
                  recommendation: dict, provenance: dict) -> dict:
    """Replace ``out_dir`` with the five files and the MediaPipe model; returns the config.

    The files are written beside it and swapped in at once: a crash leaves the previous
    outputs as they were, and a folder that holds anything else is refused, never emptied."""
    with replaced_folder(out_dir, is_packaged_output, OUTPUT_KIND, mark=False) as out:
        shutil.copyfile(model_path, out / MODEL_FILE)
        write_labels(out / LABELS_FILE, classes)
        write_json(out / METRICS_FILE, metrics, ensure_ascii=False)
        write_json(out / THRESHOLDS_FILE, recommendation, ensure_ascii=False)
        model = Int8Model.load(out / MODEL_FILE)
        config = inference_config(model, file_sha256(out / MODEL_FILE), classes, recommendation,
                                  provenance, metrics["kernel_paths"])
        (out / METADATA_MODEL_FILE).write_bytes(_metadata_model(
            out / MODEL_FILE, out / LABELS_FILE, classes, provenance, model.input_size))
        config["metadata_model"] = metadata_model_section(config, out / METADATA_MODEL_FILE)
        validate_inference_config(config, f"{CONFIG_FILE} being written")  # what readers demand
        check_model_against_config(model, config, f"{CONFIG_FILE} being written")
        write_json(out / CONFIG_FILE, config, ensure_ascii=False)
    return config
