"""The params schema, written once: each section of ``params.yaml`` is a frozen dataclass, and
each key's rule (its kind, range and wording) is its field's metadata.

Stages read the params as these dataclasses (``params.student.input_size``); ``SCHEMA``, the
nested mapping of rules that ``params.validate_params`` walks, is derived from them, so a key
cannot be added to one and forgotten in the other.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Rule:
    """What one key accepts: a kind, an optional check and its description."""

    kind: str  # "int", "number", "bool", "str", "choice"
    check: Callable[[Any], bool] | None = None
    describe: str = ""
    choices: tuple = ()
    nullable: bool = False


def _key(kind: str, check: Callable[[Any], bool] | None = None, describe: str = "",
         choices: tuple = (), nullable: bool = False) -> Any:
    """A dataclass field whose values must follow this rule."""
    return dataclasses.field(metadata={"rule": Rule(kind, check, describe, choices, nullable)})


def _positive_int(describe="a positive integer"):
    return _key("int", lambda v: v > 0, describe)


def _non_negative_int(describe="an integer >= 0"):
    return _key("int", lambda v: v >= 0, describe)


def _positive_number(describe="a number > 0"):
    return _key("number", lambda v: v > 0, describe)


def _fraction(describe="a number in [0, 1]"):
    return _key("number", lambda v: 0 <= v <= 1, describe)


def _folder():
    return _key("str", lambda v: v.strip() != "", "a non-empty folder path")


def _grid_value():
    return _key("number", lambda v: 0 < v < 1, "a number in (0, 1)")


@dataclass(frozen=True)
class DataParams:
    dir: str = _folder()


@dataclass(frozen=True)
class OutputParams:
    dir: str = _folder()


@dataclass(frozen=True)
class SyntheticDataParams:
    """A generated dataset: the demo's shapes or the hard benchmark."""

    train_images: int = _positive_int()
    val_images: int = _positive_int()
    test_images: int = _positive_int()
    seed: int = _non_negative_int()


@dataclass(frozen=True)
class BenchmarkDataParams(SyntheticDataParams):
    """The hard benchmark, which may also list images without labels."""

    unlabelled_images: int = _non_negative_int(
        "an integer >= 0 (images listed in unlabelled.txt, drawn as the training images)")


@dataclass(frozen=True)
class PrepareParams:
    on_defect: str = _key("choice", choices=("fail", "skip"))
    max_image_pixels: int = _positive_int("a positive integer (width x height)")
    workers: int = _positive_int()


@dataclass(frozen=True)
class ShardsParams:
    images_per_shard: int = _positive_int("a positive integer (records per TFRecord file)")
    encoding: str = _key("choice", choices=("raw", "png"))
    shuffle_buffer: int = _positive_int("a positive integer (training records held for shuffling)")


@dataclass(frozen=True)
class TrainParams:
    strategy: str = _key("choice", choices=("auto", "mirrored", "multi_worker"))
    mixed_precision: bool = _key("bool")


TEACHER_ARCHITECTURES = (
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_lite2")


@dataclass(frozen=True)
class ModelParams:
    """The student's section (the seed's keys, plus weights and fine-tuning); the teacher's adds
    its architecture."""

    weights: str | None = _key("str", lambda v: v.strip() != "",
                               "'imagenet', null or a weights file path", nullable=True)
    partial_weights: bool = _key("bool", describe="true or false (a local weights file may fill "
                                                  "only part of the backbone)")
    input_size: int = _key("int", lambda v: 32 <= v <= 1024, "an integer from 32 to 1024 (pixels)")
    batch_size: int = _positive_int()
    epochs_head: int = _non_negative_int()
    epochs_finetune: int = _non_negative_int()
    lr_head: float = _positive_number()
    lr_finetune: float = _positive_number()
    dropout: float = _key("number", lambda v: 0 <= v < 1, "a number in [0, 1)")
    pooling: str = _key("choice", choices=("avg", "max"))
    unfreeze_fraction: float = _fraction("a number in [0, 1] (share of backbone layers)")
    weight_decay: float = _key("number", lambda v: v >= 0, "a number >= 0 (AdamW)")
    early_stopping_patience: int = _positive_int("a positive integer (epochs)")
    early_stopping_monitor: str = _key("choice", choices=("val_loss", "val_f1_macro"))
    reduce_lr_patience: int = _positive_int("a positive integer (epochs)")
    lr_schedule: str = _key("choice", choices=("plateau", "cosine"))
    warmup_epochs: int = _non_negative_int("an integer >= 0 (epochs; with lr_schedule cosine)")
    label_smoothing: float = _key("number", lambda v: 0 <= v < 0.5, "a number in [0, 0.5)")
    train_batchnorm: bool = _key("bool", describe="true or false (whether the unfrozen "
                                                  "BatchNormalization layers train)")
    head_feature_passes: int = _non_negative_int(
        "an integer >= 0 (0: the head phase runs the whole model on every epoch's augmentation; "
        "K: the frozen backbone's features of K fixed augmented passes, computed once)")
    ema_decay: float = _key("number", lambda v: 0 <= v < 1,
                            "a number in [0, 1) (0: off; else the decay of an exponential moving "
                            "average of the weights, which validation and the model kept use)")
    lr_layer_decay: float = _key("number", lambda v: 0 < v <= 1,
                                 "a number in (0, 1] (1: one learning rate; d: in the fine-tune "
                                 "phase each backbone block trains at d times the rate of the "
                                 "block above it)")


@dataclass(frozen=True)
class TeacherParams(ModelParams):
    architecture: str = _key("choice", choices=TEACHER_ARCHITECTURES)


@dataclass(frozen=True)
class DistillationParams:
    alpha: float = _fraction("a number with 0 <= alpha <= 1")
    temperature: float = _positive_number("a number > 0 (T)")
    teacher_passes: int = _non_negative_int(
        "an integer >= 0 (0: teacher online on every epoch's augmentation; K: K fixed augmented "
        "passes whose teacher outputs are computed once)")
    if_teacher_not_better: str = _key("choice", choices=("warn", "labels"))
    mixup_alpha: float | None = _key(
        "number", lambda v: 0 <= v <= 10,
        "null (augmentation.mixup_alpha's) or a number in [0, 10] (the blends of the student's "
        "fine-tune phase and QAT only; 0: none)", nullable=True)
    use_unlabelled: bool = _key("bool")


@dataclass(frozen=True)
class QatParams:
    epochs: int = _non_negative_int()
    lr: float = _positive_number()


@dataclass(frozen=True)
class ExportParams:
    representative_samples: int = _positive_int("a positive integer (training images)")


@dataclass(frozen=True)
class ColorJitterParams:
    brightness: float = _fraction()
    contrast: float = _fraction()
    saturation: float = _fraction()


@dataclass(frozen=True)
class AugmentationParams:
    random_flip_horizontal: bool = _key("bool")
    random_rotation_factor: float = _fraction("a number in [0, 1] (fraction of a full turn)")
    random_zoom_factor: float = _key("number", lambda v: 0 <= v < 1, "a number in [0, 1)")
    mixup_alpha: float = _key("number", lambda v: 0 <= v <= 10,
                              "a number in [0, 10] (Beta(a, a) blend weights; 0: no mixup)")
    color_jitter: ColorJitterParams = dataclasses.field()


@dataclass(frozen=True)
class ThresholdSearchParams:
    grid_min: float = _grid_value()
    grid_max: float = _grid_value()
    grid_step: float = _grid_value()
    objective: str = _key("choice", choices=("f1_macro",))
    # how per-class thresholds prove their gain over the global one (scoring/threshold_search)
    adoption_check: str = _key("choice", choices=("in_sample", "cross_validated"))
    folds: int = _key("int", lambda v: v >= 2, "an integer >= 2")


@dataclass(frozen=True)
class Params:
    """params.yaml, validated, as attributes."""

    seed: int = _key("int", lambda v: 0 <= v < 2**31, "an integer in [0, 2**31)")
    num_classes: int | None = _key("int", lambda v: v > 0,
                                   "a positive integer, or null to derive it", nullable=True)
    data: DataParams = dataclasses.field()
    output: OutputParams = dataclasses.field()
    demo_data: SyntheticDataParams = dataclasses.field()
    benchmark_data: BenchmarkDataParams = dataclasses.field()
    prepare: PrepareParams = dataclasses.field()
    shards: ShardsParams = dataclasses.field()
    train: TrainParams = dataclasses.field()
    teacher: TeacherParams = dataclasses.field()
    student: ModelParams = dataclasses.field()
    distillation: DistillationParams = dataclasses.field()
    qat: QatParams = dataclasses.field()
    export: ExportParams = dataclasses.field()
    augmentation: AugmentationParams = dataclasses.field()
    threshold_search: ThresholdSearchParams = dataclasses.field()

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


def schema_of(cls: type) -> dict[str, Any]:
    """The nested mapping of rules of a params dataclass: a section for a dataclass field, its
    Rule for any other (a field with neither is a bug, refused here)."""
    hints = typing.get_type_hints(cls)
    schema: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            schema[field.name] = schema_of(hints[field.name])
        elif isinstance(field.metadata.get("rule"), Rule):
            schema[field.name] = field.metadata["rule"]
        else:
            raise TypeError(f"{cls.__name__}.{field.name} has no Rule and is not a section")
    return schema


SCHEMA: dict[str, Any] = schema_of(Params)
