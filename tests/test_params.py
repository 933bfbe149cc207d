"""params.yaml validation: the shipped file is valid; every problem names its key and line."""
import dataclasses
import typing
from pathlib import Path

import pytest

from stages.common.core.errors import UserError
from stages.common.core.params import (SCHEMA, DistillationParams, Params, load_params,
                                       read_params)

REPO = Path(__file__).resolve().parents[1]


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
    assert params.distillation == DistillationParams(alpha=0.7, temperature=2.0, teacher_passes=0)
    assert params.teacher.architecture == "efficientnet_b3"
    assert params.augmentation.color_jitter.brightness == 0.15
    assert dataclasses.asdict(params) == read_params(REPO / "params.yaml")
    assert read_params(REPO / "params.yaml")["qat"] == {"epochs": 10, "lr": 1e-5}
    assert read_params(REPO / "params.yaml")["threshold_search"] == {
        "grid_min": 0.05, "grid_max": 0.95, "grid_step": 0.01, "objective": "f1_macro"}


def section_type(path: tuple[str, ...]) -> type:
    """The dataclass of a section of SCHEMA (``()``: Params itself)."""
    cls = Params
    for name in path:
        cls = typing.get_type_hints(cls)[name]
    return cls


def _schema_problems(schema: dict, path: tuple = ()) -> list[str]:
    """Where the params dataclasses and SCHEMA disagree (a key on one side only, or a section
    that is a plain value on the other)."""
    fields = {field.name: field for field in dataclasses.fields(section_type(path))}
    where = ".".join(path) or "(top level)"
    problems = [f"{where}: {key} is in SCHEMA only" for key in schema if key not in fields]
    problems += [f"{where}: {name} is a dataclass field only" for name in fields
                 if name not in schema]
    for key, rule in schema.items():
        if key not in fields:
            continue
        if isinstance(rule, dict) != dataclasses.is_dataclass(section_type((*path, key))):
            problems.append(f"{where}: {key} is a section on one side only")
        elif isinstance(rule, dict):
            problems += _schema_problems(rule, (*path, key))
    return problems


def test_params_dataclasses_have_exactly_the_schema_keys():
    assert _schema_problems(SCHEMA) == []
    broken = {**SCHEMA, "qat": {**SCHEMA["qat"], "warmup_epochs": SCHEMA["qat"]["epochs"]}}
    assert _schema_problems(broken) == ["qat: warmup_epochs is in SCHEMA only"]


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
    assert f"{path}:{first + 1}: qat.epochs is given again (first on line {first})" in str(caught.value)
    top = _params_with(tmp_path, "seed: 1337\n", "seed: 1337\nseed: 1\n")
    with pytest.raises(UserError, match=r"params.yaml:\d+: seed is given again \(first on line \d+\)"):
        load_params(top)


def test_params_written_back_read_the_same(tmp_path):
    from stages.common.core.params import write_yaml

    params = read_params(REPO / "params.yaml")
    params["qat"]["lr"] = 1e-05
    params["num_classes"] = None
    write_yaml(tmp_path / "params.yaml", params)
    assert read_params(tmp_path / "params.yaml") == params
    assert load_params(tmp_path / "params.yaml") == Params.from_dict(params)


def test_non_utf8_params_name_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes((REPO / "params.yaml").read_bytes().replace(b"seed: 1337", b"seed: 13\xff37", 1))
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
