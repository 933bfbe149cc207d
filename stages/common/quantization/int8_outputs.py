"""The INT8 model's raw outputs on a split: shared by thresholds, evaluate and tests."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from stages.common.core import layout
from stages.common.data.dataset import load_prepared
from stages.common.core.errors import UserError
from stages.common.quantization.int8_runtime import ADOPTED_KERNEL_PATH, Int8Model
from stages.common.core.progress import Progress
from stages.common.data.tfrecord_shards import Shards

CHUNK = 256  # images decoded at a time: memory stays bounded on any split size


def kernel_outputs(models: list[Int8Model], shards: Shards, split: str) -> dict[str, np.ndarray]:
    """Each model's N x C int8 outputs on a split's student-size images, by its kernel path;
    the images are streamed from the shards once for all of them."""
    for model in models:
        shards.require_size("student", model.input_size, str(model.path))
    names = ", ".join(model.kernels for model in models)
    progress = Progress(f"INT8 inference on {split} ({names} kernels)", shards.count(split))
    outputs = {model.kernels: [np.zeros((0, model.num_classes), np.int8)] for model in models}
    # one thread per model: an interpreter's run releases the GIL, and the reference kernels
    # (one core, about 0.3 s per 240 px image) then run beside the others instead of after them
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        for chunk in shards.pixel_chunks(split, "student", CHUNK):
            results = pool.map(lambda model: model.raw_outputs(chunk), models)
            for model, result in zip(models, results):
                outputs[model.kernels].append(result)
            progress.advance(len(chunk))
    return {kernels: np.concatenate(parts) for kernels, parts in outputs.items()}


def int8_outputs(model: Int8Model, shards: Shards, split: str) -> np.ndarray:
    """N x C int8 outputs of one model on a split, streamed from the shards."""
    return kernel_outputs([model], shards, split)[model.kernels]


def int8_split_outputs(model_path, prepared_dir, split: str, shards_dir=layout.SHARDS,
                       kernels: tuple[str, ...] = (ADOPTED_KERNEL_PATH,)):
    """(classes, N x C targets, {kernel path: N x C int8 outputs}, the first path's model) for
    one split."""
    dataset = load_prepared(prepared_dir)
    models = [Int8Model.load(model_path, kernels=name) for name in kernels]
    if models[0].num_classes != len(dataset.classes):
        raise UserError(f"{model_path} has {models[0].num_classes} outputs but the prepared data "
                        f"has {len(dataset.classes)} classes; rerun the pipeline (dvc repro)")
    shards = Shards.open(shards_dir, dataset)
    targets = dataset.target_matrix(split, np.int64)
    return dataset.classes, targets, kernel_outputs(models, shards, split), models[0]
