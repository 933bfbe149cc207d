"""Reading ``params.yaml`` for a stage: validated up front, with messages that name the key and
line, as the frozen dataclasses of ``params_schema`` (``params.student.input_size``).

Every stage validates the whole file before doing anything, so a typo in ``qat.lr`` is reported
by the first stage that runs, not after an hour of training. Every problem is reported at once;
unknown keys are errors too (a misspelt key would otherwise be ignored silently and its default
used), and ``.inf`` and ``.nan`` are refused where a number is expected. The file is read as
YAML 1.2, the version DVC writes (``yaml_files``). Also here: partial files laid over the
params (the CLI's --config, presets) and the params each stage declares in dvc.yaml.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from stages.common.core.errors import UserError
from stages.common.core.params_schema import SCHEMA, Params, Rule
from stages.common.core.yaml_files import read_yaml

DEFAULT_PARAMS_FILE = Path("params.yaml")
PIPELINE_FILE = Path(__file__).resolve().parents[3] / "dvc.yaml"  # beside the stages package


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
    override, lines = _read_override(override_path)
    return validate_params(_overlay(read_params(base_path), override), str(override_path), lines)


def _read_override(path: str | Path) -> tuple[dict, dict[str, int]]:
    override, lines = read_yaml(path)
    if override is None:
        override = {}
    if not isinstance(override, dict):
        raise UserError(f"{path}: must be a mapping of keys like params.yaml")
    return override, lines


def _flag_values(mapping: dict, prefix: str = ""):
    """(dotted key, value as YAML 1.2 text) for each value of a partial params mapping."""
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _flag_values(value, f"{prefix}{key}.")
        elif value is None:
            yield f"{prefix}{key}", "null"
        elif isinstance(value, bool):
            yield f"{prefix}{key}", "true" if value else "false"
        else:
            yield f"{prefix}{key}", repr(value) if isinstance(value, float) else str(value)


def preset_flags(base_path: str | Path, *preset_paths: str | Path) -> list[str]:
    """Partial params files (presets) as ``dvc exp run`` flags: ``-S key=value`` for each value
    they set, in their order, after checking them laid over the base params one after the other,
    as the CLI's --config is; a key set again by a later preset takes its value and keeps its
    first place. Values are written as YAML 1.2 scalars, which is how DVC reads them back."""
    params = read_params(base_path)
    overrides: dict = {}
    for preset_path in preset_paths:
        override, lines = _read_override(preset_path)
        # checked as laid so far, so that a problem names the preset and line that made it
        params = validate_params(_overlay(params, override), str(preset_path), lines)
        for dotted, text in _flag_values(override):
            if not text or any(character.isspace() for character in text):
                raise UserError(f"{preset_path}: {dotted}: {text!r} cannot be passed as one -S "
                                "flag (empty or holds a space); set it in params.yaml instead")
        overrides = _overlay(overrides, override)
    return [part for dotted, text in _flag_values(overrides)
            for part in ("-S", f"{dotted}={text}")]


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

