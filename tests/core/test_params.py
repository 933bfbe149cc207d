"""params.yaml validation: the shipped file is valid; every problem names its key and line."""
import dataclasses
import re
from pathlib import Path

import pytest

from stages.common.core.errors import UserError
from stages.common.core.params import load_params, read_params
from stages.common.core.params_schema import SCHEMA, DistillationParams, Params

REPO = Path(__file__).resolve().parents[2]


def _params_with(tmp_path, old, new):
    text = (REPO / "params.yaml").read_text()
    assert old in text, old
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def _line_of(path, fragment):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


def test_shipped_params_are_valid_and_hold_the_seed_values():
    params = load_params(REPO / "params.yaml")
    assert params.seed == 1337
    assert params.teacher.input_size == 300 and params.student.input_size == 240
    assert params.distillation == DistillationParams(alpha=0.7, temperature=2.0, teacher_passes=0,
                                                     if_teacher_not_better="warn", mixup_alpha=None,
                                                     use_unlabelled=False)
    assert params.benchmark_data.unlabelled_images == 0
    assert params.teacher.architecture == "efficientnet_b3"
    assert params.augmentation.color_jitter.brightness == 0.15
    assert dataclasses.asdict(params) == read_params(REPO / "params.yaml")
    assert read_params(REPO / "params.yaml")["qat"] == {"epochs": 10, "lr": 1e-5}
    assert read_params(REPO / "params.yaml")["threshold_search"] == {
        "grid_min": 0.05, "grid_max": 0.95, "grid_step": 0.01, "objective": "f1_macro",
        "adoption_check": "in_sample", "folds": 5}


def test_the_schema_is_the_dataclasses():
    """SCHEMA is derived from the dataclasses: a section for each nested dataclass, the field's
    rule for each key; a field given neither is refused when the schema is built."""
    from stages.common.core.params_schema import Rule, _key, schema_of

    assert set(SCHEMA) == {field.name for field in dataclasses.fields(Params)}
    assert SCHEMA["teacher"]["architecture"].choices[-1] == "efficientnet_lite2"
    assert set(SCHEMA["student"]) | {"architecture"} == set(SCHEMA["teacher"])
    assert isinstance(SCHEMA["augmentation"]["color_jitter"]["saturation"], Rule)

    @dataclasses.dataclass(frozen=True)
    class Forgotten:
        ruled: int = _key("int")
        bare: int = 0

    with pytest.raises(TypeError, match="Forgotten.bare has no Rule"):
        schema_of(Forgotten)


def test_params_are_frozen():
    params = load_params(REPO / "params.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.student.input_size = 64
    assert isinstance(params, Params)


@pytest.mark.parametrize("old, new, key, expected", [
    ("alpha: 0.7", "alpha: 1.5", "distillation.alpha", "0 <= alpha <= 1"),
    ("temperature: 2.0", "temperature: 0", "distillation.temperature", "> 0"),
    ("lr_head: 1.0e-3", "lr_head: fast", "teacher.lr_head", "a number > 0"),
    ("batch_size: 32", "batch_size: 3.5", "student.batch_size", "a positive integer"),
    ("on_defect: fail", "on_defect: ignore", "prepare.on_defect", "one of 'fail', 'skip'"),
    ("random_flip_horizontal: true", "random_flip_horizontal: 1",
     "augmentation.random_flip_horizontal", "true or false"),
    # a boolean is no integer (Python's True == 1): batch_size: true must not load as 1
    ("batch_size: 32", "batch_size: true", "student.batch_size", "a positive integer"),
    ("epochs: 10", "epochs: false", "qat.epochs", "an integer >= 0"),
    ("lr_head: 1.0e-3", "lr_head: true", "teacher.lr_head", "a number > 0"),
])
def test_bad_value_names_key_and_line(tmp_path, old, new, key, expected):
    path = _params_with(tmp_path, old, new)
    with pytest.raises(UserError) as caught:
        load_params(path)
    message = str(caught.value)
    assert f"{path}:{_line_of(path, new)}: {key} must be" in message
    assert expected in message


def test_a_grid_of_one_point_is_refused(tmp_path):
    """grid_step larger than grid_max - grid_min leaves one threshold to search."""
    path = _params_with(tmp_path, "grid_step: 0.01", "grid_step: 0.95")
    with pytest.raises(UserError, match="threshold_search.grid_step must not exceed "
                                        "grid_max - grid_min"):
        load_params(path)
    load_params(_params_with(tmp_path, "grid_step: 0.01", "grid_step: 0.8"))  # two points: fine


def test_grid_min_must_be_below_grid_max(tmp_path):
    path = _params_with(tmp_path, "grid_min: 0.05", "grid_min: 0.96")
    with pytest.raises(UserError, match="threshold_search.grid_min must be smaller than grid_max"):
        load_params(path)


def test_unknown_and_missing_keys(tmp_path):
    path = _params_with(tmp_path, "  lr_finetune: 1.0e-4\n  dropout: 0.4",
                        "  lr_fine_tune: 1.0e-4\n  dropout: 0.4")
    with pytest.raises(UserError) as caught:
        load_params(path)
    message = str(caught.value)
    assert "teacher.lr_fine_tune is not a known key" in message
    assert "teacher.lr_finetune is missing" in message


def test_num_classes_may_be_null_or_positive(tmp_path):
    params = load_params(_params_with(tmp_path, "num_classes: null", "num_classes: 7"))
    assert params.num_classes == 7
    with pytest.raises(UserError, match="num_classes must be a positive integer"):
        load_params(_params_with(tmp_path, "num_classes: null", "num_classes: 0"))


def test_invalid_yaml_and_missing_file(tmp_path):
    path = _params_with(tmp_path, "qat:\n", "qat: [\n")
    with pytest.raises(UserError, match=r"params.yaml:\d+: not valid YAML"):
        load_params(path)
    with pytest.raises(UserError, match="file not found"):
        load_params(tmp_path / "absent.yaml")


@pytest.mark.parametrize("old, new, key, value", [
    ("lr: 1.0e-5", "lr: 1e-05", ("qat", "lr"), 1e-05),        # how DVC writes -S qat.lr=1e-5
    ("lr_head: 1.0e-3", "lr_head: 1E-3", ("teacher", "lr_head"), 1e-3),
    ("alpha: 0.7", "alpha: 7e-1", ("distillation", "alpha"), 0.7),
    ("epochs: 10", "epochs: 0x0a", ("qat", "epochs"), 10),
])
def test_numbers_are_read_as_yaml_1_2_like_dvc_writes_them(tmp_path, old, new, key, value):
    params = load_params(_params_with(tmp_path, old, new))
    read = getattr(getattr(params, key[0]), key[1])
    assert read == value and type(read) is type(value)


@pytest.mark.parametrize("old, new, key", [
    ("lr: 1.0e-5", "lr: .inf", "qat.lr"),
    ("alpha: 0.7", "alpha: .nan", "distillation.alpha"),
    ("weight_decay: 1.0e-4", "weight_decay: .Inf", "teacher.weight_decay"),
    ("grid_step: 0.01", "grid_step: -.inf", "threshold_search.grid_step"),
])
def test_infinity_and_nan_are_refused(tmp_path, old, new, key):
    path = _params_with(tmp_path, old, new)
    with pytest.raises(UserError) as caught:
        load_params(path)
    assert f"{path}:{_line_of(path, new)}: {key} must be a finite number" in str(caught.value)


def test_yaml_1_1_booleans_are_strings_as_in_dvc(tmp_path):
    # YAML 1.2 (DVC) reads `yes` as a string; a 1.1 reader would turn it into true silently
    path = _params_with(tmp_path, "random_flip_horizontal: true", "random_flip_horizontal: yes")
    with pytest.raises(UserError, match="random_flip_horizontal must be true or false, got 'yes'"):
        load_params(path)


def test_a_key_given_twice_names_both_lines(tmp_path):
    path = _params_with(tmp_path, "qat:\n  epochs: 10\n", "qat:\n  epochs: 10\n  epochs: 3\n")
    first = _line_of(path, "epochs: 10")
    with pytest.raises(UserError) as caught:
        load_params(path)
    assert f"{path}:{first + 1}: qat.epochs is given again (first on line {first})" in str(
        caught.value
    )
    top = _params_with(tmp_path, "seed: 1337\n", "seed: 1337\nseed: 1\n")
    with pytest.raises(
        UserError, match=r"params.yaml:\d+: seed is given again \(first on line \d+\)"
    ):
        load_params(top)


def test_params_written_back_read_the_same(tmp_path):
    from stages.common.core.yaml_files import write_yaml

    params = read_params(REPO / "params.yaml")
    params["qat"]["lr"] = 1e-05
    params["num_classes"] = None
    write_yaml(tmp_path / "params.yaml", params)
    assert read_params(tmp_path / "params.yaml") == params
    assert load_params(tmp_path / "params.yaml") == Params.from_dict(params)


def test_non_utf8_params_name_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(
        (REPO / "params.yaml").read_bytes().replace(b"seed: 1337", b"seed: 13\xff37", 1)
    )
    with pytest.raises(UserError, match=r"params.yaml:3: not valid UTF-8"):
        load_params(path)


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    """Nine lines of anchors and aliases expand to 9**9 values: refused by the scanner, before
    anything expands them (today's reader walked them for ever)."""
    lines = ['lol0: &a0 ["lol"]'] + [f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]"
                                     for i in range(1, 9)]
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text() + "\n".join(lines) + "\n")
    first = len((REPO / "params.yaml").read_text().splitlines()) + 1
    with pytest.raises(UserError, match=rf"params.yaml:{first}: YAML anchors and aliases"):
        read_params(path)
    path.write_text((REPO / "params.yaml").read_text().replace(
        "seed: 1337", "seed: &s 1337\nnum_classes_copy: *s", 1))
    with pytest.raises(UserError, match="anchors and aliases"):
        read_params(path)


def test_deep_nesting_is_refused_with_its_line(tmp_path):
    path = _params_with(tmp_path, "seed: 1337", "seed: " + "[" * 5000 + "]" * 5000)
    line = _line_of(path, "seed: [")
    with pytest.raises(UserError, match=rf"params.yaml:{line}: nested more than 8 levels"):
        read_params(path)
    nested = "".join(f"\n{'  ' * (i + 1)}k{i}:" for i in range(9)) + " 1"
    path = _params_with(tmp_path, "seed: 1337", "seed:" + nested)
    with pytest.raises(UserError, match="nested more than 8 levels"):
        read_params(path)


# --- The validator's parts, each on the case that tells a right rule from a near miss ---------

def test_each_kind_of_value_names_what_it_wants_by_default():
    from stages.common.core.params import _check_value
    from stages.common.core.params_schema import Rule

    assert _check_value(None, Rule("int")) == "is missing a value (null)"
    assert _check_value(None, Rule("int", nullable=True)) is None
    assert _check_value("3", Rule("int")) == "must be an integer, got '3'"
    assert _check_value("3", Rule("number")) == "must be a number, got '3'"
    assert _check_value(3, Rule("str")) == "must be a string, got 3"
    assert _check_value(3, Rule("str", describe="a path")) == "must be a path, got 3"
    assert _check_value("yes", Rule("bool")) == "must be true or false, got 'yes'"
    assert _check_value("min", Rule("choice", choices=("avg", "max"))) == \
        "must be one of 'avg', 'max', got 'min'"
    assert _check_value(float("inf"), Rule("number")) == \
        "must be a finite number (a number), got inf"
    assert _check_value(2, Rule("int", lambda v: v > 2, "above 2")) == "must be above 2, got 2"
    assert _check_value(3, Rule("int", lambda v: v > 2, "above 2")) is None
    assert _check_value(True, Rule("bool")) is None and _check_value("avg", Rule(
        "choice", choices=("avg", "max"))) is None


def _shipped():
    return read_params(REPO / "params.yaml")


def test_a_section_or_file_that_is_not_a_mapping_is_named():
    from stages.common.core.params import validate_params

    with pytest.raises(UserError) as caught:
        validate_params([1, 2])
    assert str(caught.value) == ("params.yaml has 1 invalid setting(s):\n"
                                 "  params.yaml: (top level) must be a mapping of keys")
    params = _shipped()
    params["teacher"] = 5
    with pytest.raises(UserError) as caught:
        validate_params(params, "p.yaml", {"teacher": 40})
    assert str(caught.value) == ("p.yaml has 1 invalid setting(s):\n"
                                 "  p.yaml:40: teacher must be a mapping of keys")


def test_every_problem_gets_its_own_line_with_its_key_line():
    from stages.common.core.params import validate_params

    params = _shipped()
    params["seed"] = -1
    params["qat"]["epochs"] = "x"
    with pytest.raises(UserError) as caught:
        validate_params(params, "p.yaml", {"seed": 3})
    assert str(caught.value).splitlines() == [
        "p.yaml has 2 invalid setting(s):",
        "  p.yaml:3: seed must be an integer in [0, 2**31), got -1",
        "  p.yaml: qat.epochs must be an integer >= 0, got 'x'"]


@pytest.mark.parametrize("grid_min, grid_max, grid_step, problem", [
    (0.5, 0.5, 0.01, "threshold_search.grid_min must be smaller than grid_max"),
    (0.3, 0.5, 0.2, None),  # a step of exactly the span: two thresholds
    (0.3, 0.5, 0.2000001, "threshold_search.grid_step must not exceed grid_max - grid_min"),
])
def test_the_grid_cross_checks_on_their_boundaries(grid_min, grid_max, grid_step, problem):
    from stages.common.core.params import validate_params

    params = _shipped()
    params["threshold_search"].update(grid_min=grid_min, grid_max=grid_max, grid_step=grid_step)
    if problem is None:
        assert validate_params(params) is params
        return
    with pytest.raises(UserError) as caught:
        validate_params(params)
    assert str(caught.value).endswith(f": {problem}")


def test_typed_params_refuse_keys_that_are_not_fields():
    from stages.common.core.params_schema import DataParams, _typed

    with pytest.raises(ValueError) as caught:
        _typed(DataParams, {"dir": "x", "extra": 1})
    assert str(caught.value) == "DataParams: keys ['dir', 'extra'] are not its fields ['dir']"


def test_key_lines_reach_into_lists_and_sections(tmp_path):
    from stages.common.core.yaml_files import read_yaml

    path = tmp_path / "p.yaml"
    path.write_text("a:\n  b: 1\nlist:\n  - c: 2\n  - d:\n      e: 3\n")
    data, lines = read_yaml(path)
    assert data == {"a": {"b": 1}, "list": [{"c": 2}, {"d": {"e": 3}}]}
    assert lines == {"a": 1, "a.b": 2, "list": 3, "list.0.c": 4, "list.1.d": 5, "list.1.d.e": 6}


def test_keys_given_twice_are_each_listed(tmp_path):
    from stages.common.core.yaml_files import read_yaml

    path = tmp_path / "p.yaml"
    path.write_text("a: 1\nb: 2\na: 3\nb: 4\n")
    with pytest.raises(UserError) as caught:
        read_yaml(path)
    assert str(caught.value) == (f"{path} gives 2 key(s) twice; keep one of each:\n"
                                 f"  {path}:3: a is given again (first on line 1)\n"
                                 f"  {path}:4: b is given again (first on line 2)")


def test_yaml_errors_name_the_line_and_the_problem(tmp_path):
    from stages.common.core.yaml_files import read_yaml

    path = tmp_path / "p.yaml"
    path.write_text("a: 1\nb: 2\nc: [1, 2\nd: 4\n")
    with pytest.raises(UserError) as caught:
        read_yaml(path)
    assert str(caught.value).startswith(f"{path}:4: not valid YAML: ")
    path.write_text("a: 1\nb: x\x01y\n")  # a character YAML refuses: an error without a line
    with pytest.raises(UserError) as caught:
        read_yaml(path)
    assert str(caught.value).startswith(f"{path}: not valid YAML: unacceptable character #x0001")
    path.write_text("a: 1\n\tb: 2\n")
    with pytest.raises(UserError, match=rf"^{path}:2: not valid YAML: found character '\\t'"):
        read_yaml(path)
    with pytest.raises(UserError) as caught:
        read_yaml(tmp_path / "gone.yaml")
    assert str(caught.value) == f"{tmp_path / 'gone.yaml'}: file not found (run from the " \
                                "repository root)"


def test_a_byte_order_mark_is_read_past(tmp_path):
    from stages.common.core.yaml_files import read_yaml

    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert read_yaml(path) == ({"a": 1}, {"a": 1})
    path.write_text("")
    assert read_yaml(path) == (None, {})


ALIASES = ("YAML anchors and aliases (&name, *name) are not accepted; write each value out")
TOO_DEEP = "nested more than 8 levels deep; params.yaml has sections of plain values"


@pytest.mark.parametrize("text, refused_on", [
    ("a: &x 1\nb: 2\n", (1, ALIASES)),
    ("a: 1\nb: *x\n", (2, ALIASES)),
    ("a: [[[[[[[1]]]]]]]\n", None),  # 1 mapping + 7 lists = 8 levels
    ("a: [[[[[[[[1]]]]]]]]\n", (1, TOO_DEEP)),  # 9 levels
    ("a: {b: {c: {d: {e: {f: {g: {h: {i: 1}}}}}}}}\n", (1, TOO_DEEP)),
    ("a:\n b:\n  c:\n   d:\n    e:\n     f:\n      g:\n       h:\n        - 1\n", (9, TOO_DEEP)),
    ("".join(f"s{i}: {{a: {{b: [1]}}}}\n" for i in range(9)), None),  # siblings do not add up
    ("".join(f"s{i}:\n  a:\n    b:\n      - 1\n" for i in range(9)), None),
    ("l: [" + ", ".join("[[[[[1]]]]]" for _ in range(9)) + "]\n", None),
    # a closing brings the depth back by one level, no more, no less
    ("a: {b: {c: 1}, d: [[[[[[[1]]]]]]]}\n", (1, TOO_DEEP)),
    ("a: {b: 1}\nc: [[[[[[[[1]]]]]]]]\n", (2, TOO_DEEP)),
    ("a: {b: 1}\nc: [[[[[[[1]]]]]]]\n", None),
])
def test_nesting_is_counted_per_branch_and_anchors_are_refused(tmp_path, text, refused_on):
    from stages.common.core.yaml_files import read_yaml

    path = tmp_path / "p.yaml"
    path.write_text(text)
    if refused_on is None:
        read_yaml(path)
        return
    with pytest.raises(UserError) as caught:
        read_yaml(path)
    line, problem = refused_on
    assert str(caught.value) == f"{path}:{line}: {problem}"


def test_params_written_back_keep_their_order_and_block_style(tmp_path):
    from stages.common.core.yaml_files import write_yaml

    path = tmp_path / "p.yaml"
    write_yaml(path, {"z": {"b": 1, "a": [1, 2]}, "é": "ü"})
    assert path.read_bytes().decode("utf-8") == "z:\n  b: 1\n  a:\n  - 1\n  - 2\né: ü\n"


def test_an_override_file_is_laid_over_the_base(tmp_path):
    from stages.common.core.params import load_params_with_overrides

    override = tmp_path / "seed.yaml"
    override.write_text("student:\n  epochs_head: 3\nseed: 9\n")
    merged = load_params_with_overrides(REPO / "params.yaml", override)
    base = _shipped()
    assert merged["student"] == {**base["student"], "epochs_head": 3} and merged["seed"] == 9
    assert merged["teacher"] == base["teacher"]
    override.write_text("")
    assert load_params_with_overrides(REPO / "params.yaml", override) == base
    override.write_text("- 1\n")
    with pytest.raises(UserError) as caught:
        load_params_with_overrides(REPO / "params.yaml", override)
    assert str(caught.value) == f"{override}: must be a mapping of keys like params.yaml"
    override.write_text("student:\n  epochs_head: -1\n")
    with pytest.raises(UserError) as caught:
        load_params_with_overrides(REPO / "params.yaml", override)
    assert f"  {override}:2: student.epochs_head must be" in str(caught.value)


def test_num_classes_set_must_match_the_dataset():
    from stages.common.core.params import check_num_classes

    params = Params.from_dict(_shipped())
    check_num_classes(params, 5)  # null: derived
    fixed = dataclasses.replace(params, num_classes=4)
    check_num_classes(fixed, 4)
    with pytest.raises(UserError) as caught:
        check_num_classes(fixed, 5, "p.yaml")
    assert str(caught.value) == ("p.yaml: num_classes is 4 but the dataset has 5 classes; set "
                                 "num_classes to null to derive it, or fix the dataset's labels")


def test_stage_params_and_their_values(tmp_path):
    from stages.common.core.params import param_values, stage_params

    pipeline = tmp_path / "dvc.yaml"
    pipeline.write_text("stages:\n  s:\n    params:\n      - seed\n      - qat.epochs\n"
                        "      - other.yaml:\n          - x\n")
    assert stage_params("s", pipeline) == ["seed", "qat.epochs"]
    params = Params.from_dict(_shipped())
    assert param_values(params, ["seed", "qat.epochs", "qat"]) == {
        "seed": params.seed, "qat.epochs": params.qat.epochs,
        "qat": dataclasses.asdict(params.qat)}
    with pytest.raises(UserError) as caught:
        stage_params("t", pipeline)
    assert str(caught.value) == f"{pipeline}: cannot read the params of stage t ('t')"


# the rules built with the schema, each on both sides of its boundary (mutmut cannot switch a
# mutant on in code that runs at import, so these values are what pins them)
@pytest.mark.parametrize("section, key, accepted, refused", [
    ("student", "batch_size", [1], [0, -1]),
    ("student", "epochs_head", [0, 1], [-1]),
    ("student", "lr_head", [1e-9], [0, -1e-9]),
    ("student", "unfreeze_fraction", [0, 1, 0.5], [-0.01, 1.01]),
    ("student", "input_size", [32, 1024], [31, 1025]),
    ("student", "weights", [None, "imagenet", "w.h5"], ["", "  "]),
    ("student", "partial_weights", [True, False], [1, "false"]),
    ("student", "train_batchnorm", [True, False], [0, "true"]),
    ("student", "dropout", [0, 0.99], [1, -0.1]),
    ("student", "weight_decay", [0, 0.1], [-0.001]),
    ("student", "label_smoothing", [0, 0.49], [0.5, -0.1]),
    ("student", "early_stopping_patience", [1], [0]),
    ("student", "warmup_epochs", [0], [-1]),
    ("student", "head_feature_passes", [0, 3], [-1, 1.5]),
    ("student", "ema_decay", [0, 0.999], [1, -0.1]),
    ("student", "lr_layer_decay", [0.01, 1], [0, 1.5]),
    ("student", "pooling", ["avg", "max"], ["sum"]),
    ("student", "lr_schedule", ["plateau", "cosine"], ["step"]),
    ("student", "early_stopping_monitor", ["val_loss", "val_f1_macro"], ["loss"]),
    ("distillation", "if_teacher_not_better", ["warn", "labels"], ["label", ""]),
    ("teacher", "input_size", [32, 1024], [31, 1025]),
    ("teacher", "reduce_lr_patience", [1], [0]),
    (None, "seed", [0, 2**31 - 1], [-1, 2**31]),
])
def test_every_rule_on_both_sides_of_its_boundary(section, key, accepted, refused):
    from stages.common.core.params import validate_params

    dotted = f"{section}.{key}" if section else key

    def params_with(value):
        params = _shipped()
        (params[section] if section else params)[key] = value
        return params

    for value in accepted:
        params = params_with(value)
        assert validate_params(params) is params, value
    for value in refused:
        with pytest.raises(UserError, match=f"  params.yaml: {re.escape(dotted)} must be "):
            validate_params(params_with(value))


def test_a_key_given_twice_inside_a_list_is_found(tmp_path):
    from stages.common.core.yaml_files import read_yaml

    path = tmp_path / "p.yaml"
    path.write_text("l:\n  - a: 1\n    a: 2\n")
    with pytest.raises(UserError, match=r"p.yaml:3: l.0.a is given again \(first on line 2\)"):
        read_yaml(path)


@pytest.mark.parametrize("override, problem", [
    ("student: 5\n", "student must be a mapping of keys"),
    ("extra:\n  a: 1\n", "extra is not a known key (misspelt?)"),
])
def test_an_override_that_does_not_fit_the_sections_is_named(tmp_path, override, problem):
    from stages.common.core.params import load_params_with_overrides

    path = tmp_path / "seed.yaml"
    path.write_text(override)
    with pytest.raises(UserError) as caught:
        load_params_with_overrides(REPO / "params.yaml", path)
    assert f"{path}:1: {problem}" in str(caught.value)


def test_num_classes_names_params_yaml_by_default():
    from stages.common.core.params import check_num_classes

    fixed = dataclasses.replace(Params.from_dict(_shipped()), num_classes=4)
    with pytest.raises(UserError, match=r"^params.yaml: num_classes is 4 but"):
        check_num_classes(fixed, 5)


def test_a_preset_becomes_flags_that_set_what_it_says():
    """presets/fast.yaml as `dvc exp run -S` flags: each value read back as YAML 1.2 (as DVC
    reads it) and set in params.yaml gives what the preset laid over params.yaml gives."""
    from ruamel.yaml import YAML

    from stages.common.core.params import load_params_with_overrides, preset_flags, read_params

    flags = preset_flags(REPO / "params.yaml", REPO / "presets" / "fast.yaml")
    assert flags[0::2] == ["-S"] * (len(flags) // 2)
    assert "student.train_batchnorm=true" in flags and "student.lr_finetune=0.003" in flags
    applied = read_params(REPO / "params.yaml")
    for flag in flags[1::2]:
        dotted, text = flag.split("=", 1)
        *sections, key = dotted.split(".")
        target = applied
        for section in sections:
            target = target[section]
        target[key] = YAML(typ="safe", pure=True).load(text)
    assert applied == load_params_with_overrides(REPO / "params.yaml",
                                                 REPO / "presets" / "fast.yaml")
    assert applied != read_params(REPO / "params.yaml")


@pytest.mark.parametrize("text, expected", [
    ("student:\n  lr_finetun: 0.1\n", r"preset\.yaml:2: student\.lr_finetun"),
    ("student:\n  lr_finetune: -1\n", r"preset\.yaml:2: student\.lr_finetune must"),
    ("student:\n  weights: my weights.h5\n", r"student\.weights.*holds a space"),
])
def test_a_wrong_preset_is_refused_with_its_line(tmp_path, text, expected):
    from stages.common.core.params import preset_flags

    preset = tmp_path / "preset.yaml"
    preset.write_text(text)
    with pytest.raises(UserError, match=expected):
        preset_flags(REPO / "params.yaml", preset)


def test_presets_are_laid_one_over_the_other_in_order(tmp_path):
    """A later preset's value wins, and each key is set by one flag only, where it first came."""
    from stages.common.core.params import preset_flags

    first = tmp_path / "first.yaml"
    first.write_text("student:\n  lr_finetune: 0.003\n  epochs_finetune: 16\n"
                     "distillation:\n  alpha: 0.7\n")
    second = tmp_path / "second.yaml"
    second.write_text("student:\n  epochs_finetune: 8\ndistillation:\n  use_unlabelled: true\n")
    assert preset_flags(REPO / "params.yaml", first, second)[1::2] == [
        "student.lr_finetune=0.003", "student.epochs_finetune=8", "distillation.alpha=0.7",
        "distillation.use_unlabelled=true"]
    assert preset_flags(REPO / "params.yaml", second, first)[1::2] == [
        "student.epochs_finetune=16", "student.lr_finetune=0.003",
        "distillation.use_unlabelled=true", "distillation.alpha=0.7"]


def test_a_wrong_value_in_a_later_preset_names_that_preset_and_its_line(tmp_path):
    from stages.common.core.params import preset_flags

    good = tmp_path / "good.yaml"
    good.write_text("student:\n  epochs_finetune: 16\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("distillation:\n  alpha: 0.7\nstudent:\n  epochs_finetune: -8\n")
    with pytest.raises(UserError, match=r"bad\.yaml:4: student\.epochs_finetune"):
        preset_flags(REPO / "params.yaml", good, bad)


RECIPE_STACKS = {
    # What docs/benchmark.md measured (fifteenth round): the distilled preset, the patient teacher,
    # eight epochs over twice the images, and the images without labels in use.
    "unlabelled over distilled": (
        ("distilled.yaml", "unlabelled.yaml"),
        ("teacher.architecture=efficientnet_lite2", "teacher.epochs_finetune=32",
         "teacher.early_stopping_patience=32", "student.epochs_finetune=8",
         "student.early_stopping_patience=32", "distillation.alpha=0.7",
         "distillation.teacher_passes=8", "distillation.use_unlabelled=true")),
    # Eighteenth and nineteenth rounds: that recipe with both the teacher and the student at
    # 300 px, the rest left as the presets below it.
    "300 px over unlabelled over distilled": (
        ("distilled.yaml", "unlabelled.yaml", "student_300px.yaml"),
        ("teacher.input_size=300", "student.input_size=300",
         "teacher.architecture=efficientnet_lite2", "teacher.epochs_finetune=32",
         "student.epochs_finetune=8", "distillation.teacher_passes=8",
         "distillation.use_unlabelled=true")),
}


@pytest.mark.parametrize("stack", sorted(RECIPE_STACKS))
def test_a_measured_recipe_laid_preset_over_preset(stack):
    """Each stack of presets gives the values the benchmark measured, each key once."""
    from stages.common.core.params import preset_flags

    presets, expected_flags = RECIPE_STACKS[stack]
    flags = preset_flags(REPO / "params.yaml",
                         *(REPO / "presets" / name for name in presets))[1::2]
    for expected in expected_flags:
        assert expected in flags
    assert len(flags) == len({flag.split("=")[0] for flag in flags})


@pytest.mark.parametrize("preset", sorted((REPO / "presets").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_preset_is_valid_laid_over_params_yaml(preset):
    from stages.common.core.params import preset_flags

    flags = preset_flags(REPO / "params.yaml", preset)  # a wrong key or value: UserError
    assert flags and flags[0::2] == ["-S"] * (len(flags) // 2)
