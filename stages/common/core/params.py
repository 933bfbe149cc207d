"""Reading and validating ``params.yaml`` up front, with messages that name the key and line.

Every stage validates the whole file before doing anything, so a typo in ``qat.lr`` is reported
by the first stage that runs, not after an hour of training. Unknown keys are errors too: a
misspelt key would otherwise be ignored silently and its default used.

Stages read the params as frozen dataclasses (``Params``: ``params.student.input_size``), built
from the validated file; tests/test_params.py checks that their fields are exactly SCHEMA's keys.

The file is read as YAML 1.2, the version DVC writes: ``dvc exp run -S qat.lr=1e-5`` stores
``lr: 1e-05``, a number in YAML 1.2 but a string for a YAML 1.1 reader such as PyYAML. ruamel.yaml
(DVC's own YAML library) reads it, so any value DVC writes comes back as the same value. A key
given twice is an error naming both lines (YAML 1.1 readers keep the last one silently), and
``.inf``/``.nan`` are refused where a number is expected.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from stages.common.core.errors import UserError, read_utf8

DEFAULT_PARAMS_FILE = Path("params.yaml")
PIPELINE_FILE = Path(__file__).resolve().parents[3] / "dvc.yaml"  # beside the stages package


@dataclass(frozen=True)
class Rule:
    """What one key accepts: a kind, an optional check and its description."""

    kind: str  # "int", "number", "bool", "str", "choice"
    check: Callable[[Any], bool] | None = None
    describe: str = ""
    choices: tuple = ()
    nullable: bool = False


def _positive_int(describe="a positive integer"):
    return Rule("int", lambda v: v > 0, describe)


def _non_negative_int(describe="an integer >= 0"):
    return Rule("int", lambda v: v >= 0, describe)


def _positive_number(describe="a number > 0"):
    return Rule("number", lambda v: v > 0, describe)


def _fraction(describe="a number in [0, 1]"):
    return Rule("number", lambda v: 0 <= v <= 1, describe)


def _weights():
    return Rule("str", lambda v: v.strip() != "", "'imagenet', null or a weights file path",
                nullable=True)


def _input_size():
    return Rule("int", lambda v: 32 <= v <= 1024, "an integer from 32 to 1024 (pixels)")


def _model_schema() -> dict:
    """Keys of the teacher and student sections (the seed's, plus weights and fine-tuning)."""
    return {
        "weights": _weights(),
        "partial_weights": Rule("bool", describe="true or false (a local weights file may "
                                                 "fill only part of the backbone)"),
        "input_size": _input_size(),
        "batch_size": _positive_int(),
        "epochs_head": _non_negative_int(),
        "epochs_finetune": _non_negative_int(),
        "lr_head": _positive_number(),
        "lr_finetune": _positive_number(),
        "dropout": Rule("number", lambda v: 0 <= v < 1, "a number in [0, 1)"),
        "pooling": Rule("choice", choices=("avg", "max")),
        "unfreeze_fraction": _fraction("a number in [0, 1] (share of backbone layers)"),
        "weight_decay": Rule("number", lambda v: v >= 0, "a number >= 0 (AdamW)"),
        "early_stopping_patience": _positive_int("a positive integer (epochs)"),
        "early_stopping_monitor": Rule("choice", choices=("val_loss", "val_f1_macro")),
        "reduce_lr_patience": _positive_int("a positive integer (epochs)"),
        "lr_schedule": Rule("choice", choices=("plateau", "cosine")),
        "warmup_epochs": _non_negative_int("an integer >= 0 (epochs; with lr_schedule cosine)"),
        "label_smoothing": Rule("number", lambda v: 0 <= v < 0.5, "a number in [0, 0.5)"),
        "train_batchnorm": Rule("bool", describe="true or false (whether the unfrozen "
                                                 "BatchNormalization layers train)"),
    }


SCHEMA: dict[str, Any] = {
    "seed": Rule("int", lambda v: 0 <= v < 2**31, "an integer in [0, 2**31)"),
    "num_classes": Rule("int", lambda v: v > 0, "a positive integer, or null to derive it",
                        nullable=True),
    "data": {"dir": Rule("str", lambda v: v.strip() != "", "a non-empty folder path")},
    "output": {"dir": Rule("str", lambda v: v.strip() != "", "a non-empty folder path")},
    "demo_data": {
        "train_images": _positive_int(),
        "val_images": _positive_int(),
        "test_images": _positive_int(),
        "seed": _non_negative_int(),
    },
    "benchmark_data": {
        "train_images": _positive_int(),
        "val_images": _positive_int(),
        "test_images": _positive_int(),
        "seed": _non_negative_int(),
    },
    "prepare": {
        "on_defect": Rule("choice", choices=("fail", "skip")),
        "max_image_pixels": _positive_int("a positive integer (width x height)"),
        "workers": _positive_int(),
    },
    "shards": {
        "images_per_shard": _positive_int("a positive integer (records per TFRecord file)"),
        "encoding": Rule("choice", choices=("raw", "png")),
        "shuffle_buffer": _positive_int("a positive integer (training records held for shuffling)"),
    },
    "train": {
        "strategy": Rule("choice", choices=("auto", "mirrored", "multi_worker")),
        "mixed_precision": Rule("bool"),
    },
    "teacher": {
        "architecture": Rule("choice", choices=(
            "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
            "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
            "efficientnet_lite2")),
        **_model_schema(),
    },
    "student": _model_schema(),
    "distillation": {
        "alpha": _fraction("a number with 0 <= alpha <= 1"),
        "temperature": _positive_number("a number > 0 (T)"),
        "teacher_passes": _non_negative_int(
            "an integer >= 0 (0: teacher online on every epoch's augmentation; K: K fixed "
            "augmented passes whose teacher outputs are computed once)"),
    },
    "qat": {"epochs": _non_negative_int(), "lr": _positive_number()},
    "export": {"representative_samples": _positive_int("a positive integer (training images)")},
    "augmentation": {
        "random_flip_horizontal": Rule("bool"),
        "random_rotation_factor": _fraction("a number in [0, 1] (fraction of a full turn)"),
        "random_zoom_factor": Rule("number", lambda v: 0 <= v < 1, "a number in [0, 1)"),
        "mixup_alpha": Rule("number", lambda v: 0 <= v <= 10,
                            "a number in [0, 10] (Beta(a, a) blend weights; 0: no mixup)"),
        "color_jitter": {
            "brightness": _fraction(),
            "contrast": _fraction(),
            "saturation": _fraction(),
        },
    },
    "threshold_search": {
        "grid_min": Rule("number", lambda v: 0 < v < 1, "a number in (0, 1)"),
        "grid_max": Rule("number", lambda v: 0 < v < 1, "a number in (0, 1)"),
        "grid_step": Rule("number", lambda v: 0 < v < 1, "a number in (0, 1)"),
        "objective": Rule("choice", choices=("f1_macro",)),
    },
}


@dataclass(frozen=True)
class DataParams:
    dir: str


@dataclass(frozen=True)
class OutputParams:
    dir: str


@dataclass(frozen=True)
class SyntheticDataParams:
    """A generated dataset: the demo's shapes or the hard benchmark."""

    train_images: int
    val_images: int
    test_images: int
    seed: int


@dataclass(frozen=True)
class PrepareParams:
    on_defect: str
    max_image_pixels: int
    workers: int


@dataclass(frozen=True)
class ShardsParams:
    images_per_shard: int
    encoding: str
    shuffle_buffer: int


@dataclass(frozen=True)
class TrainParams:
    strategy: str
    mixed_precision: bool


@dataclass(frozen=True)
class ModelParams:
    """The student's section; the teacher's adds its architecture."""

    weights: str | None
    partial_weights: bool
    input_size: int
    batch_size: int
    epochs_head: int
    epochs_finetune: int
    lr_head: float
    lr_finetune: float
    dropout: float
    pooling: str
    unfreeze_fraction: float
    weight_decay: float
    early_stopping_patience: int
    early_stopping_monitor: str
    reduce_lr_patience: int
    lr_schedule: str
    warmup_epochs: int
    label_smoothing: float
    train_batchnorm: bool


@dataclass(frozen=True)
class TeacherParams(ModelParams):
    architecture: str


@dataclass(frozen=True)
class DistillationParams:
    alpha: float
    temperature: float
    teacher_passes: int


@dataclass(frozen=True)
class QatParams:
    epochs: int
    lr: float


@dataclass(frozen=True)
class ExportParams:
    representative_samples: int


@dataclass(frozen=True)
class ColorJitterParams:
    brightness: float
    contrast: float
    saturation: float


@dataclass(frozen=True)
class AugmentationParams:
    random_flip_horizontal: bool
    random_rotation_factor: float
    random_zoom_factor: float
    mixup_alpha: float
    color_jitter: ColorJitterParams


@dataclass(frozen=True)
class ThresholdSearchParams:
    grid_min: float
    grid_max: float
    grid_step: float
    objective: str


@dataclass(frozen=True)
class Params:
    """params.yaml, validated, as attributes."""

    seed: int
    num_classes: int | None
    data: DataParams
    output: OutputParams
    demo_data: SyntheticDataParams
    benchmark_data: SyntheticDataParams
    prepare: PrepareParams
    shards: ShardsParams
    train: TrainParams
    teacher: TeacherParams
    student: ModelParams
    distillation: DistillationParams
    qat: QatParams
    export: ExportParams
    augmentation: AugmentationParams
    threshold_search: ThresholdSearchParams

    @classmethod
    def from_dict(cls, values: dict) -> "Params":
        """From validated params (``read_params``); values are kept as the file gave them."""
        return _typed(cls, values)


def _typed(cls, values: dict):
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    if set(values) != fields:  # validation makes them equal; a mismatch is a bug here
        raise ValueError(f"{cls.__name__}: keys {sorted(values)} are not its fields "
                         f"{sorted(fields)}")
    return cls(**{name: _typed(hints[name], value) if dataclasses.is_dataclass(hints[name])
                  else value for name, value in values.items()})


def _yaml() -> YAML:
    return YAML(typ="safe", pure=True)  # YAML 1.2, plain Python values


def _key_lines(node: Node, prefix: str = "", duplicates: list | None = None) -> dict[str, int]:
    """The line (1-based) of every mapping key; a key met twice in one mapping is appended to
    ``duplicates`` as (path, first line, second line)."""
    lines: dict[str, int] = {}
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            line = key_node.start_mark.line + 1
            if path in lines and duplicates is not None:
                duplicates.append((path, lines[path], line))
            else:
                lines[path] = line
            lines.update(_key_lines(value_node, path + ".", duplicates))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_key_lines(item, f"{prefix}{index}.", duplicates))
    return lines


def _check_value(value: Any, rule: Rule) -> str | None:
    """Return a problem description, or None if the value is acceptable."""
    if value is None:
        return None if rule.nullable else "is missing a value (null)"
    if rule.kind == "int":
        ok_type = isinstance(value, int) and not isinstance(value, bool)
        wanted = rule.describe or "an integer"
    elif rule.kind == "number":
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        wanted = rule.describe or "a number"
        if ok_type and not math.isfinite(value):
            return f"must be a finite number ({wanted}), got {value!r}"
    elif rule.kind == "bool":
        ok_type, wanted = isinstance(value, bool), "true or false"
    elif rule.kind == "str":
        ok_type, wanted = isinstance(value, str), rule.describe or "a string"
    else:
        ok_type = value in rule.choices
        wanted = "one of " + ", ".join(repr(c) for c in rule.choices)
    if not ok_type or (rule.check is not None and not rule.check(value)):
        return f"must be {wanted}, got {value!r}"
    return None


def _walk(schema: dict, values: Any, prefix: str, problems: list[tuple[str, str]]) -> None:
    if not isinstance(values, dict):
        problems.append((prefix.rstrip(".") or "(top level)", "must be a mapping of keys"))
        return
    for key in values:
        if key not in schema:
            problems.append((f"{prefix}{key}", "is not a known key (misspelt?)"))
    for key, rule in schema.items():
        path = f"{prefix}{key}"
        if key not in values:
            problems.append((path, "is missing"))
        elif isinstance(rule, dict):
            _walk(rule, values[key], path + ".", problems)
        else:
            problem = _check_value(values[key], rule)
            if problem:
                problems.append((path, problem))


def _cross_checks(params: dict) -> list[tuple[str, str]]:
    search = params["threshold_search"]
    problems = []
    if search["grid_min"] >= search["grid_max"]:
        problems.append(("threshold_search.grid_min", "must be smaller than grid_max"))
    elif search["grid_step"] > search["grid_max"] - search["grid_min"]:
        problems.append(("threshold_search.grid_step", "must not exceed grid_max - grid_min"))
    return problems


def validate_params(params: Any, source: str = "params.yaml",
                    key_lines: dict[str, int] | None = None) -> dict:
    """Check every key of the params against SCHEMA; raise UserError listing all problems."""
    key_lines = key_lines or {}
    problems: list[tuple[str, str]] = []
    _walk(SCHEMA, params, "", problems)
    if not problems:
        problems = _cross_checks(params)
    if problems:
        def where(path):
            line = key_lines.get(path)
            return f"{source}:{line}" if line else source

        listed = "\n".join(f"  {where(path)}: {path} {problem}" for path, problem in problems)
        raise UserError(f"{source} has {len(problems)} invalid setting(s):\n{listed}")
    return params


MAX_NESTING = 8  # params.yaml nests 3 deep; DVC writes no anchors or aliases


def _check_structure(text: str, path: Path) -> None:
    """UserError for anchors and aliases (nine lines of them can expand to billions of values)
    and for nesting deeper than MAX_NESTING, found by the scanner, which neither expands nor
    recurses, before the composer (which does both) sees the text."""
    depth = 0
    for token in _yaml().scan(text):
        kind = type(token).__name__
        if kind in ("AnchorToken", "AliasToken"):
            raise UserError(f"{path}:{token.start_mark.line + 1}: YAML anchors and aliases "
                            f"(&name, *name) are not accepted; write each value out")
        if kind in ("BlockMappingStartToken", "BlockSequenceStartToken",
                    "FlowMappingStartToken", "FlowSequenceStartToken"):
            depth += 1
            if depth > MAX_NESTING:
                raise UserError(f"{path}:{token.start_mark.line + 1}: nested more than "
                                f"{MAX_NESTING} levels deep; params.yaml has sections of "
                                "plain values")
        elif kind in ("BlockEndToken", "FlowMappingEndToken", "FlowSequenceEndToken"):
            depth -= 1


def read_yaml(path: str | Path) -> tuple[object, dict[str, int]]:
    """Parse a YAML 1.2 file; returns the data and the line of every key (UserError if the file
    is unreadable, not YAML, gives a key twice, uses anchors or aliases, or nests too deep)."""
    path = Path(path)
    text = read_utf8(path, "file not found (run from the repository root)", bom=True)
    try:
        _check_structure(text, path)
        node = _yaml().compose(text)
        duplicates: list = []
        lines = _key_lines(node, duplicates=duplicates) if node is not None else {}
        if duplicates:
            listed = "\n".join(f"  {path}:{second}: {key} is given again (first on line {first})"
                               for key, first, second in duplicates)
            raise UserError(f"{path} gives {len(duplicates)} key(s) twice; keep one of each:\n"
                            f"{listed}")
        data = _yaml().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = error.problem or error.context or str(error)
        raise UserError(f"{path}{line}: not valid YAML: {problem}") from None
    except YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {error}") from None
    return data, lines


def write_yaml(path: str | Path, data: dict) -> None:
    """Write params the way DVC does (YAML 1.2), so ``read_yaml`` gives the same values back."""
    writer = _yaml()
    writer.default_flow_style = False
    writer.sort_base_mapping_type_on_output = False
    with open(path, "w", encoding="utf-8") as handle:
        writer.dump(data, handle)


def read_params(path: str | Path = DEFAULT_PARAMS_FILE) -> dict:
    """Read and validate a params file, as a mapping (for tools that change and write params);
    every problem is a UserError naming file and line."""
    params, lines = read_yaml(path)
    return validate_params(params, str(path), lines)


def load_params(path: str | Path = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate a params file, as attributes; every problem is a UserError naming file
    and line."""
    return Params.from_dict(read_params(path))


def _overlay(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _overlay(base[key], value)
        else:
            merged[key] = value
    return merged


def load_params_with_overrides(base_path: str | Path, override_path: str | Path) -> dict:
    """The base params with a partial file laid over them (a seed-style config); problems are
    reported against the override file and its lines."""
    base = read_params(base_path)
    override, lines = read_yaml(override_path)
    if override is None:
        override = {}
    if not isinstance(override, dict):
        raise UserError(f"{override_path}: must be a mapping of keys like params.yaml")
    return validate_params(_overlay(base, override), str(override_path), lines)


def preset_flags(base_path: str | Path, preset_path: str | Path) -> list[str]:
    """A partial params file (a preset) as ``dvc exp run`` flags: ``-S key=value`` for each value
    it sets, in its order, after checking it laid over the base params as the CLI's --config is.
    Values are written as YAML 1.2 scalars, which is how DVC reads them back."""
    load_params_with_overrides(base_path, preset_path)  # a wrong key or value: file and line
    override, _ = read_yaml(preset_path)
    flags = []

    def scalar(value) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        return repr(value) if isinstance(value, float) else str(value)

    def walk(mapping: dict, prefix: str) -> None:
        for key, value in mapping.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
                continue
            text = scalar(value)
            if not text or any(character.isspace() for character in text):
                raise UserError(f"{preset_path}: {prefix}{key}: {text!r} cannot be passed as one "
                                "-S flag (empty or holds a space); set it in params.yaml instead")
            flags.extend(["-S", f"{prefix}{key}={text}"])

    walk(override or {}, "")
    return flags


def check_num_classes(params: Params, vocabulary_size: int, source: str = "params.yaml") -> None:
    """``num_classes`` may be null (derived); if set it must match the dataset's vocabulary."""
    expected = params.num_classes
    if expected is not None and expected != vocabulary_size:
        raise UserError(
            f"{source}: num_classes is {expected} but the dataset has {vocabulary_size} classes; "
            "set num_classes to null to derive it, or fix the dataset's labels"
        )


def stage_params(stage: str, pipeline: Path = PIPELINE_FILE) -> list[str]:
    """The params ``stage`` declares in dvc.yaml (sections or dotted keys): what DVC reruns it
    for, and so what its resume checkpoints must be keyed on."""
    import yaml

    try:
        declared = yaml.safe_load(pipeline.read_text(encoding="utf-8"))["stages"][stage]["params"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
        raise UserError(f"{pipeline}: cannot read the params of stage {stage} ({error})") from None
    return [name for name in declared if isinstance(name, str)]


def param_values(params: Params, names: list[str]) -> dict[str, Any]:
    """Each dotted name's value (a whole section for a section's name)."""
    values = dataclasses.asdict(params)
    found = {}
    for name in names:
        value: Any = values
        for part in name.split("."):
            value = value[part]
        found[name] = value
    return found

