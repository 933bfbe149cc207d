"""The INT8 model's raw outputs on a split: shared by thresholds, evaluate and tests."""
from __future__ import annotations

import numpy as np

from .dataset import load_prepared
from .errors import UserError
from .int8_runtime import ADOPTED_KERNEL_PATH, Int8Model
from .progress import Progress
from .shards import Shards

CHUNK = 256  # images decoded at a time: memory stays bounded on any split size


def int8_outputs(model: Int8Model, shards: Shards, split: str) -> np.ndarray:
    """N x C int8 outputs on a split's student-size images, streamed from the shards."""
    shards.require_size("student", model.input_size, str(model.path))
    progress = Progress(f"INT8 inference on {split} ({model.kernels} kernels)", shards.count(split))
    outputs = [np.zeros((0, model.num_classes), np.int8)]
    for chunk in shards.pixel_chunks(split, "student", CHUNK):
        outputs.append(model.raw_outputs(chunk))
        progress.advance(len(chunk))
    return np.concatenate(outputs)


def int8_split_outputs(model_path, prepared_dir, split: str, shards_dir="data/shards",
                       kernels: str = ADOPTED_KERNEL_PATH):
    """(classes, N x C targets, N x C int8 outputs, model) for one split."""
    dataset = load_prepared(prepared_dir)
    model = Int8Model.load(model_path, kernels=kernels)
    if model.num_classes != len(dataset.classes):
        raise UserError(f"{model_path} has {model.num_classes} outputs but the prepared data has "
                        f"{len(dataset.classes)} classes; rerun the pipeline (dvc repro)")
    shards = Shards.open(shards_dir, dataset)
    targets = np.array(dataset.targets(split), dtype=np.int64).reshape(-1, len(dataset.classes))
    return dataset.classes, targets, int8_outputs(model, shards, split), model
