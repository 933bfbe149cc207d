"""The Python reader of inference_config.json, field by field, without a model: what it accepts,
the exact words it refuses with, the JSON subset it reads, and the model-vs-config check.
Fast (no TensorFlow), so that mutation testing (scripts/mutation.sh) can run it per mutant; the
conformance corpus (test_config_conformance.py) holds both readers to the same verdicts."""
import copy
import math
from types import SimpleNamespace

import pytest

from stages.common.core.errors import UserError
from stages.common.deployment.inference_config import (
    check_model_against_config,
    load_inference_config,
    threshold_is_consistent,
    validate_inference_config,
)
from stages.common.deployment.strict_json import strict_json

# output scale 0.1, zero point -3: the logit of q is (q + 3) / 10, so probability 0.5 (logit 0)
# needs q >= -3; 0.7 (logit 0.847) needs q >= 5.47, so 6; 0.3 (logit -0.847) needs q >= -11.47,
# so -11
CONFIG = {
    "format_version": 1,
    "model": {"file": "model_qat_int8.tflite", "sha256": "0" * 64, "bytes": 1000},
    "input": {"shape": [1, 64, 64, 3], "height": 64, "width": 64, "channels": 3,
              "color_order": "RGB", "dtype": "uint8",
              "quantization": {"scale": 0.0078125, "zero_point": 127}},
    "preprocessing": {},
    "output": {"shape": [1, 3], "dtype": "int8",
               "quantization": {"scale": 0.1, "zero_point": -3}},
    "labels": {"file": "labels.txt", "classes": ["cat", "dog", "bird"]},
    "kernels": {"tuned_and_evaluated_on": "xnnpack"},
    "thresholds": {"adopted": "per_class", "classes": [
        {"class": "cat", "probability": 0.5, "int8": -3},
        {"class": "dog", "probability": 0.7, "int8": 6},
        {"class": "bird", "probability": 0.3, "int8": -11}]},
}


def _changed(path: str, value):
    config = copy.deepcopy(CONFIG)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = config
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return config


def _refusal(config) -> str:
    with pytest.raises(UserError) as caught:
        validate_inference_config(config, "out/inference_config.json")
    return str(caught.value)


def test_a_valid_config_is_returned_as_it_is():
    config = copy.deepcopy(CONFIG)
    assert validate_inference_config(config, "x") is config
    assert validate_inference_config(_changed("kernels", KeyError), "x")  # kernels is optional


@pytest.mark.parametrize("path, value, problem", [
    ("model.sha256", KeyError, "field model.sha256 is missing"),
    ("format_version", 2, "field format_version is 2; this reader knows version 1 only "
                          "(package the model again, or use the matching version of the "
                          "pipeline)"),
    ("input.height", 64.0, "field input.height must be of type integer, got 64.0"),
    ("output.quantization.zero_point", True, "field output.quantization.zero_point must be of "
                                             "type integer, got True"),
    ("thresholds.classes.1.int8", 129, "field thresholds.classes[1].int8 129 is greater than the "
                                       "maximum of 128"),
    ("thresholds.classes.1.class", "cat", "field thresholds.classes[1].class is 'cat' but "
                                          "labels.classes[1] is 'dog'"),
    ("thresholds.classes.1.int8", 5, "field thresholds.classes[1].int8 is 5, but probability 0.7 "
                                     "under output.quantization needs 6"),
    ("thresholds.classes.1.int8", 7, "field thresholds.classes[1].int8 is 7, but probability 0.7 "
                                     "under output.quantization needs 6"),
    ("output.shape", [1, 4], "field output.shape says 4 outputs for 3 classes"),
    ("input.width", 65, "field input.shape [1, 64, 64, 3] disagrees with input.height 64 and "
                        "input.width 65"),
    ("input.height", 63, "field input.shape [1, 64, 64, 3] disagrees with input.height 63"),
])
def test_each_refusal_names_the_file_and_the_field(path, value, problem):
    message = _refusal(_changed(path, value))
    assert message.startswith("out/inference_config.json is not a valid inference config "
                              "(1 problem(s)):\n  out/inference_config.json: ")
    assert "  out/inference_config.json: " + problem in message


def test_a_label_with_a_character_no_label_may_hold_is_named():
    config = _changed("labels.classes.2", "bi\u200brd")
    config["thresholds"]["classes"][2]["class"] = "bi\u200brd"
    assert _refusal(config).endswith("(1 problem(s)):\n  out/inference_config.json: field "
                                     "labels.classes[2] holds a invisible character U+200B "
                                     "(ZERO WIDTH SPACE)")


def test_a_config_for_a_model_whose_input_is_not_square_is_valid():
    config = _changed("input.shape", [1, 48, 64, 3])
    config["input"]["height"] = 48
    assert validate_inference_config(config, "x") is config


def test_a_threshold_row_missing_for_a_class_is_named():
    config = _changed("thresholds.classes", CONFIG["thresholds"]["classes"][:2])
    assert _refusal(config).endswith("field thresholds.classes has 2 row(s) for 3 classes; each "
                                     "class needs its own threshold")


def test_every_problem_is_listed_one_per_line():
    config = _changed("input.width", 65)
    config["output"]["shape"] = [1, 4]
    lines = _refusal(config).splitlines()
    assert lines[0].endswith("(2 problem(s)):")
    assert lines[1:] == [
        "  out/inference_config.json: field output.shape says 4 outputs for 3 classes",
        "  out/inference_config.json: field input.shape [1, 64, 64, 3] disagrees with "
        "input.height 64 and input.width 65"]


def test_schema_problems_are_sorted_by_field_and_come_before_consistency():
    config = _changed("model.bytes", 0)
    config["input"]["width"] = 65  # a consistency problem: not reported while the schema fails
    config["labels"]["file"] = "names.txt"
    lines = _refusal(config).splitlines()
    assert lines[0].endswith("(2 problem(s)):")
    assert [line.split(" field ")[1].split(" ")[0] for line in lines[1:]] == ["labels.file",
                                                                               "model.bytes"]


def test_the_top_level_is_named_when_it_is_not_an_object():
    assert "field (top level) must be of type object, got [1]" in _refusal([1])


@pytest.mark.parametrize("probability, q, consistent", [
    # 0.6 is first reached at q = 2 (logit 0.5, 0.622); q = 1 gives 0.599
    (0.6, 2, True), (0.6, 1, False), (0.6, 3, False),
    # probability 0.5 sits exactly on q = -3 (logit 0): within the readers' tolerance, -2 is as
    # right as -3 (the two sigmoids may round either way), -4 and -1 are not
    (0.5, -3, True), (0.5, -2, True), (0.5, -4, False), (0.5, -1, False)])
def test_threshold_consistency_on_the_int8_steps(probability, q, consistent):
    assert threshold_is_consistent(probability, q, 0.1, -3) is consistent


def test_threshold_consistency_exactly_on_the_tolerance():
    """A probability exactly THRESHOLD_TOLERANCE above a step is still reached by it; one
    exactly the tolerance below the step under it is not below that one."""
    from stages.common.deployment.inference_config import THRESHOLD_TOLERANCE
    from stages.common.quantization.int8_runtime import probability_table

    table = probability_table(0.1, -3)
    above = table[-1 + 128] + THRESHOLD_TOLERANCE
    assert above - THRESHOLD_TOLERANCE == table[-1 + 128]  # exact in float64 for this step
    assert threshold_is_consistent(above, -1, 0.1, -3)
    under = table[-2 + 128] - THRESHOLD_TOLERANCE
    assert under + THRESHOLD_TOLERANCE == table[-2 + 128]
    assert not threshold_is_consistent(under, -1, 0.1, -3)


def test_threshold_consistency_tolerance_and_the_ends():
    on_step = 1 / (1 + math.exp(-0.2))  # the probability of q = -1
    assert threshold_is_consistent(on_step + 5e-10, -1, 0.1, -3)  # within the tolerance: reached
    assert not threshold_is_consistent(on_step + 2e-9, -1, 0.1, -3)
    below = 1 / (1 + math.exp(-0.1))  # the probability of q = -2
    assert threshold_is_consistent(below - 5e-10, -1, 0.1, -3)  # within the tolerance
    assert not threshold_is_consistent(below - 2e-9, -1, 0.1, -3)  # -2 reaches it
    assert threshold_is_consistent(0.0, -128, 0.1, -3)  # every output reaches 0
    assert threshold_is_consistent(1.0, 128, 0.1, -3)  # none reaches 1: never predicted
    assert not threshold_is_consistent(0.5, 128, 0.1, -3)


@pytest.mark.parametrize("text, problem", [
    ('{"b": 1, "a": 1, "a": 2}', "f: invalid JSON: member name 'a' appears twice in one object"),
    ('{"a": NaN}', "f: invalid JSON: NaN is not a JSON number"),
    ('{"a": -Infinity}', "f: invalid JSON: -Infinity is not a JSON number"),
    ('{"a": 1e999}', "f: invalid JSON: a number is out of range"),
    ('{"a": ' + "1" * 64 + "}", "f: invalid JSON: a number is too long"),
    ('{"a": 1.' + "0" * 62 + "}", "f: invalid JSON: a number is too long"),
    ('{"a": 1.' + "0" * 61 + "}", None),
    ('{\n"a": [1,\n]}', "f:3: invalid JSON: Expecting value"),
    ('{"a": "x\\u0000"}', "f: invalid JSON: \\u0000 inside a string"),
    ('{"x\\u0000": 1}', "f: invalid JSON: \\u0000 inside a string"),
    ('{"a": ["\\ud800"]}', "f: invalid JSON: a lone UTF-16 surrogate in a \\u escape"),
    ('{"a": ["\\udfff"]}', "f: invalid JSON: a lone UTF-16 surrogate in a \\u escape"),
    ('{"a": ["\\ue000\\ud7ff"]}', None),  # the code points on either side are characters
    ('[[],' + "[" * 64 + "]" * 64 + "]", "f:1: invalid JSON: nested more than 64 levels deep"),
    ('"x\ny"' + "[" * 65, "f:2: invalid JSON: nested more than 64 levels deep"),
    ("\n" + "[" * 64 + "]" * 64, None),
    ("\n\n" + "[" * 65 + "]" * 65, "f:3: invalid JSON: nested more than 64 levels deep"),
    ('{"a": "[[[[' + "[" * 70 + '"}', None),  # brackets inside a string are not nesting
])
def test_the_json_subset(text, problem):
    if problem is None:
        strict_json(text, "f")
        return
    with pytest.raises(UserError) as caught:
        strict_json(text, "f")
    assert str(caught.value) == problem


def test_json_values_are_read_exactly():
    assert strict_json('{"a": [1, 2.5, "x", null, true], "b": {"c": ' + "9" * 63 + "}}", "f") == {
        "a": [1, 2.5, "x", None, True], "b": {"c": int("9" * 63)}}
    assert isinstance(strict_json('{"v": 1}', "f")["v"], int)


def test_load_names_a_missing_file_and_reads_a_valid_one(tmp_path):
    import json

    with pytest.raises(UserError, match=r"inference_config.json: not found; is .* an output "
                                        r"folder of the pipeline\?"):
        load_inference_config(tmp_path / "inference_config.json")
    (tmp_path / "inference_config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    assert load_inference_config(tmp_path / "inference_config.json") == CONFIG
    path = tmp_path / "inference_config.json"
    path.write_text('{"format_version": 1, "format_version": 1}', encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_inference_config(path)
    assert str(caught.value) == (f"{path}: invalid JSON: member name 'format_version' appears "
                                 "twice in one object")
    path.write_text(json.dumps(_changed("output.shape", [1, 4])), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_inference_config(path)
    assert str(caught.value) == (f"{path} is not a valid inference config (1 problem(s)):\n"
                                 f"  {path}: field output.shape says 4 outputs for 3 classes")
    path.write_text(" " * (16 << 20) + json.dumps(CONFIG), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_inference_config(path)
    assert str(caught.value) == f"{path}: larger than {16 << 20} bytes"


def _model(**changes):
    model = SimpleNamespace(path="out/model_qat_int8.tflite", input_signature=[1, 64, 64, 3],
                            input_size=64, input_scale=0.0078125, input_zero_point=127,
                            output_signature=[1, 3], output_scale=0.1, output_zero_point=-3)
    for name, value in changes.items():
        setattr(model, name, value)
    return model


def test_every_field_that_does_not_describe_the_model_is_listed():
    with pytest.raises(UserError) as caught:
        check_model_against_config(_model(input_zero_point=0, output_zero_point=0), CONFIG, "c")
    assert str(caught.value) == (
        "c does not describe out/model_qat_int8.tflite:\n"
        "  c: field input.quantization.zero_point is 127 but the model has 0\n"
        "  c: field output.quantization.zero_point is -3 but the model has 0")


def test_a_model_the_config_describes_passes():
    check_model_against_config(_model(), CONFIG, "c.json")


@pytest.mark.parametrize("attribute, value, field", [
    ("input_signature", [1, 96, 96, 3], "input.shape is [1, 64, 64, 3] but the model has "
                                        "[1, 96, 96, 3]"),
    ("input_size", 96, "input.height is 64 but the model has 96"),
    ("input_scale", 0.5, "input.quantization.scale is 0.0078125 but the model has 0.5"),
    ("input_zero_point", 128, "input.quantization.zero_point is 127 but the model has 128"),
    ("output_signature", [1, 4], "output.shape is [1, 3] but the model has [1, 4]"),
    ("output_scale", 0.2, "output.quantization.scale is 0.1 but the model has 0.2"),
    ("output_zero_point", 0, "output.quantization.zero_point is -3 but the model has 0"),
])
def test_each_field_that_does_not_describe_the_model_is_named(attribute, value, field):
    with pytest.raises(UserError) as caught:
        check_model_against_config(_model(**{attribute: value}), CONFIG, "c.json")
    assert str(caught.value) == ("c.json does not describe out/model_qat_int8.tflite:\n"
                                 f"  c.json: field {field}")
