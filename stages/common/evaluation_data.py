"""The INT8 model's raw outputs on a prepared split: shared by thresholds, evaluate and tests."""
from __future__ import annotations

import numpy as np

from .data_pipeline import letterbox_split
from .errors import UserError
from .int8_runtime import Int8Model
from .dataset import load_prepared


def int8_split_outputs(model_path, prepared_dir, split: str):
    """(classes, N x C targets, N x C int8 outputs, model) for one split."""
    dataset = load_prepared(prepared_dir)
    model = Int8Model.load(model_path)
    if model.num_classes != len(dataset.classes):
        raise UserError(f"{model_path} has {model.num_classes} outputs but the prepared data has "
                        f"{len(dataset.classes)} classes; rerun the pipeline (dvc repro)")
    pixels, _ = letterbox_split(dataset.dataset_dir, dataset.splits[split], model.input_size)
    targets = np.array(dataset.targets(split), dtype=np.int64).reshape(-1, len(dataset.classes))
    return dataset.classes, targets, model.raw_outputs(pixels, label=f"INT8 inference on {split}"), model
