"""A trained model on disk: its weights (HDF5) and the few facts that rebuild its graph
(model.json), written by the training stages and read by every later one."""
from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from stages.common.core.errors import UserError, way_back
from stages.common.core.json_files import write_json
from stages.common.core.params_schema import TEACHER_ARCHITECTURES
from stages.common.models.architectures import POOLINGS, build_student, build_teacher

keras = tf.keras


STUDENT_ARCHITECTURE = "efficientnet_lite1"
# model.json of the student: the distillation weight its fine-tune phase ended with
DISTILLATION_ALPHA_AT_END = "distillation_alpha_at_end"
STAGE_OF = {"teacher": "train_teacher", "student": "train_student", "qat": "qat"}  # models/<name>


def save_trained(model: keras.Model, directory: str | Path, architecture: str, classes: list[str],
                 input_size: int, dropout: float, pooling: str = "avg",
                 facts: dict | None = None) -> None:
    """Weights (HDF5) plus the few facts needed to rebuild the graph (model.json), and the
    training's ``facts`` that a later stage goes on with.

    Weights rather than a whole saved model: the QAT stage rebuilds and re-quantises the graph,
    and a quantised model does not survive Keras serialisation.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_weights(directory / "weights.h5")
    meta = {"architecture": architecture, "classes": classes, "input_size": input_size,
            "dropout": dropout, "pooling": pooling, **(facts or {})}
    write_json(directory / "model.json", meta)


def read_model_meta(directory: str | Path) -> dict:
    """A trained model's facts (``model.json``); UserError naming the file if it is missing
    or damaged, and the stage that rebuilds it."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "model.json").read_text())
        if not (isinstance(meta, dict) and {"classes", "input_size", "dropout"} <= set(meta)):
            raise ValueError("not the model.json a training stage writes")
        meta.setdefault("pooling", "avg")  # written before pooling was a choice
        if meta["pooling"] not in POOLINGS:
            raise ValueError(f"pooling {meta['pooling']!r} is not one of {', '.join(POOLINGS)}")
    except FileNotFoundError:
        raise UserError(f"{directory}/model.json not found: run the stage that trains it first "
                        "(dvc repro)") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(f"{directory}/model.json: damaged ({error}); "
                        f"{way_back(directory, STAGE_OF.get(directory.name, 'the stage'))}"
                        ) from None
    return meta


def load_trained(directory: str | Path, classes: list[str] | None = None
                 ) -> tuple[keras.Model, dict]:
    """A trained model and its facts (model.json); with ``classes``, it must have been trained
    on exactly those (the prepared data's)."""
    directory = Path(directory)
    meta = read_model_meta(directory)
    if classes is not None and meta["classes"] != classes:
        raise UserError(f"{directory}: trained on classes {meta['classes']}, the prepared data "
                        f"has {classes}; rerun the training stages (dvc repro)")
    architecture = meta.get("architecture")
    if architecture == STUDENT_ARCHITECTURE:
        model = build_student(len(meta["classes"]), meta["input_size"], meta["dropout"],
                              pooling=meta["pooling"])
    elif architecture in TEACHER_ARCHITECTURES:
        model = build_teacher(len(meta["classes"]), meta["input_size"], meta["dropout"],
                              weights=None, architecture=architecture, pooling=meta["pooling"])
    else:
        raise UserError(f"{directory}/model.json: unknown architecture {architecture!r}")
    try:
        model.load_weights(directory / "weights.h5")
    except Exception as error:  # h5py and Keras raise many types for a damaged file
        raise UserError(f"{directory / 'weights.h5'}: cannot be loaded ({type(error).__name__}: "
                        f"{error}); "
                        f"{way_back(directory, STAGE_OF.get(directory.name, 'the stage'))}"
                        ) from None
    return model, meta
