"""The schema of inference_config.json, and reading it back with every problem named by field.

The rules of a packaged folder are written once, in docs/output_folder_rules.md; this module is
their Python side and stages/c_reference/config_reader.c their C side, and the conformance corpus
(tests/helpers/config_corpus.py) holds both to one verdict on every case.

The package stage checks what it writes against ``SCHEMA``; ``predict`` (and anything else that
reads a packaged folder) refuses a config that breaks it instead of guessing: a missing key, a
list where an object belongs, a threshold that is not an integer, fewer threshold rows than
classes, an unknown ``format_version``. ``strict_json`` reads only the JSON subset the rules
allow (no duplicate member names, no NaN or Infinity, at most ``MAX_JSON_DEPTH`` levels); JSON
Schema (draft 2020-12) says the shape of each field; ``consistency_problems`` says what a schema
cannot: that counts, sizes, names and the int8 thresholds agree.
"""
from __future__ import annotations

import re
from pathlib import Path

from jsonschema import Draft202012Validator, validators

from stages.common.core import layout
from stages.common.core.errors import UserError, read_utf8
from stages.common.core.label_text import forbidden_character
from stages.common.deployment.strict_json import strict_json
from stages.common.quantization.int8_runtime import (
    KERNEL_PATHS,
    NEVER,
    int8_threshold,
    probability_table,
)

FORMAT_VERSION = 1
MODEL_FILE = layout.EXPORT_MODEL.name  # the export stage's file, shipped under its own name
LABELS_FILE = "labels.txt"
CONFIG_FILE = "inference_config.json"
MAX_TEXT_BYTES = 16 << 20  # inference_config.json and labels.txt
THRESHOLD_TOLERANCE = 1e-9  # between two readers' sigmoids (numpy's and libm's exp)

_INT8 = {"type": "integer", "minimum": -128, "maximum": 127}
_ONE = {"type": "integer", "const": 1}
_THREE = {"type": "integer", "const": 3}
_SIDE = {"type": "integer", "minimum": 1, "maximum": 1 << 16}
_QUANTIZATION = {
    "type": "object", "required": ["scale", "zero_point"],
    "properties": {"scale": {"type": "number", "exclusiveMinimum": 0},
                   "zero_point": {"type": "integer"}},
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "inference_config.json of the multi-label pipeline",
    "type": "object",
    "required": ["format_version", "model", "input", "preprocessing", "output", "labels",
                 "thresholds"],
    "properties": {
        "format_version": {"type": "integer", "const": FORMAT_VERSION},
        "model": {
            "type": "object", "required": ["file", "sha256", "bytes"],
            "properties": {"file": {"const": MODEL_FILE},
                           "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                           "bytes": {"type": "integer", "minimum": 1}},
        },
        "input": {
            "type": "object",
            "required": ["shape", "height", "width", "channels", "color_order", "dtype",
                         "quantization"],
            "properties": {
                "shape": {"type": "array", "prefixItems": [_ONE, _SIDE, _SIDE, _THREE],
                          "minItems": 4, "maxItems": 4},
                "height": _SIDE,
                "width": _SIDE,
                "channels": _THREE,
                "color_order": {"const": "RGB"},
                "dtype": {"const": "uint8"},
                "quantization": {**_QUANTIZATION, "properties": {
                    **_QUANTIZATION["properties"],
                    "zero_point": {"type": "integer", "minimum": 0, "maximum": 255}}},
            },
        },
        "preprocessing": {"type": "object"},
        "output": {
            "type": "object", "required": ["shape", "dtype", "quantization"],
            "properties": {
                "shape": {"type": "array", "prefixItems": [
                    _ONE, {"type": "integer", "minimum": 1, "maximum": 1 << 20}],
                          "minItems": 2, "maxItems": 2},
                "dtype": {"const": "int8"},
                "quantization": {**_QUANTIZATION, "properties": {
                    **_QUANTIZATION["properties"], "zero_point": _INT8}},
            },
        },
        "labels": {
            "type": "object", "required": ["classes"],
            "properties": {"file": {"const": LABELS_FILE},
                           "classes": {"type": "array", "minItems": 1, "uniqueItems": True,
                                       "items": {"type": "string", "minLength": 1}}},
        },
        "kernels": {
            "type": "object", "required": ["tuned_and_evaluated_on"],
            "properties": {"tuned_and_evaluated_on": {"enum": sorted(KERNEL_PATHS)}},
        },
        "thresholds": {
            "type": "object", "required": ["adopted", "classes"],
            "properties": {
                "adopted": {"enum": ["global", "per_class"]},
                "classes": {"type": "array", "items": {
                    "type": "object", "required": ["class", "probability", "int8"],
                    "properties": {
                        "class": {"type": "string"},
                        "probability": {"type": "number", "minimum": 0, "maximum": 1},
                        # 128: no int8 output reaches it, the class is never predicted
                        "int8": {"type": "integer", "minimum": -128, "maximum": 128},
                    },
                }},
            },
        },
    },
}

# An integer is a number written without fraction or exponent: 1.0 is not one (JSON Schema
# would take it), as the C reader does not.
_Validator = validators.extend(Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER
                               .redefine("integer", lambda _, value: type(value) is int))
_VALIDATOR = _Validator(SCHEMA)


def _field(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(error) -> tuple[str, str]:
    """(field, problem) in words a person can act on."""
    where = list(error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'(.+)' is a required property", error.message)
        if missing:
            return _field(where + [missing.group(1)]), "is missing"
    if error.validator == "const" and where == ["format_version"]:
        return "format_version", (f"is {error.instance!r}; this reader knows version "
                                  f"{FORMAT_VERSION} only (package the model again, or use the "
                                  "matching version of the pipeline)")
    if error.validator == "type":
        return _field(where), f"must be of type {error.validator_value}, got {error.instance!r}"
    return _field(where), error.message


def threshold_is_consistent(probability: float, q: int, scale: float, zero_point: int) -> bool:
    """Whether ``q`` is the smallest int8 output whose probability reaches ``probability`` (or
    NEVER when none does), under the output quantisation, within THRESHOLD_TOLERANCE."""
    table = probability_table(scale, zero_point)
    reaches = q == NEVER or table[q + 128] >= probability - THRESHOLD_TOLERANCE
    below = q == -128 or table[min(q, 128) - 1 + 128] < probability + THRESHOLD_TOLERANCE
    return bool(reaches and below)


def consistency_problems(config: dict) -> list[tuple[str, str]]:
    """What the schema cannot say: counts, sizes, names and thresholds that must agree."""
    problems = []
    classes = config["labels"]["classes"]
    for index, name in enumerate(classes):
        forbidden = forbidden_character(name)
        if forbidden:
            problems.append((f"labels.classes[{index}]", f"holds a {forbidden}"))
    rows = config["thresholds"]["classes"]
    if len(rows) != len(classes):
        problems.append(("thresholds.classes", f"has {len(rows)} row(s) for {len(classes)} "
                                               "classes; each class needs its own threshold"))
    else:
        for index, (row, name) in enumerate(zip(rows, classes)):
            if row["class"] != name:
                problems.append((f"thresholds.classes[{index}].class",
                                 f"is {row['class']!r} but labels.classes[{index}] is {name!r}"))
        scale = config["output"]["quantization"]["scale"]
        zero_point = config["output"]["quantization"]["zero_point"]
        for index, row in enumerate(rows):
            if not threshold_is_consistent(row["probability"], row["int8"], scale, zero_point):
                problems.append((f"thresholds.classes[{index}].int8",
                                 f"is {row['int8']}, but probability {row['probability']!r} "
                                 "under output.quantization needs "
                                 f"{int8_threshold(row['probability'], scale, zero_point)}"))
    if config["output"]["shape"][1] != len(classes):
        problems.append(("output.shape", f"says {config['output']['shape'][1]} outputs for "
                                         f"{len(classes)} classes"))
    shape = config["input"]["shape"]
    if not (shape[1] == config["input"]["height"] and shape[2] == config["input"]["width"]):
        problems.append(("input.shape", f"{shape} disagrees with input.height "
                                        f"{config['input']['height']} and input.width "
                                        f"{config['input']['width']}"))
    return problems


def read_text_file(path: Path, what: str) -> str:
    """A regular UTF-8 file of at most MAX_TEXT_BYTES, as text; UserError naming it otherwise."""
    return read_utf8(path, f"not found; is {path.parent} {what}?", max_bytes=MAX_TEXT_BYTES)


def validate_inference_config(config, source: str) -> dict:
    """Raise UserError naming ``source`` and each bad field; returns the config."""
    errors = sorted(_VALIDATOR.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_describe(error) for error in errors]
    if not problems:
        problems = consistency_problems(config)
    if problems:
        listed = "\n".join(f"  {source}: field {field} {problem}" for field, problem in problems)
        raise UserError(f"{source} is not a valid inference config ({len(problems)} "
                        f"problem(s)):\n{listed}")
    return config


def load_inference_config(path: str | Path) -> dict:
    """Read and validate an inference_config.json; every problem is a UserError."""
    path = Path(path)
    text = read_text_file(path, "an output folder of the pipeline")
    return validate_inference_config(strict_json(text, str(path)), str(path))


def check_model_against_config(model, config: dict, source: str) -> None:
    """UserError naming each field of ``config`` that does not describe ``model`` (an Int8Model):
    the signature, sizes and quantisation the phone's code is written from."""
    expected = {
        "input.shape": (config["input"]["shape"], model.input_signature),
        "input.height": (config["input"]["height"], model.input_size),
        "input.quantization.scale": (config["input"]["quantization"]["scale"], model.input_scale),
        "input.quantization.zero_point": (config["input"]["quantization"]["zero_point"],
                                          model.input_zero_point),
        "output.shape": (config["output"]["shape"], model.output_signature),
        "output.quantization.scale": (config["output"]["quantization"]["scale"],
                                      model.output_scale),
        "output.quantization.zero_point": (config["output"]["quantization"]["zero_point"],
                                           model.output_zero_point),
    }
    wrong = [f"  {source}: field {field} is {said!r} but the model has {actual!r}"
             for field, (said, actual) in expected.items() if said != actual]
    if wrong:
        raise UserError(f"{source} does not describe {model.path}:\n" + "\n".join(wrong))
