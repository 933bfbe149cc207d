"""The INT8 model's raw outputs on a split: shared by thresholds, evaluate and tests."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from stages.common.core import layout
from stages.common.core.errors import UserError
from stages.common.core.progress import Progress
from stages.common.data.dataset import load_prepared
from stages.common.data.tfrecord_shards import Shards
from stages.common.quantization.int8_runtime import ADOPTED_KERNEL_PATH, KERNEL_PATHS, Int8Model

CHUNK = 256  # images decoded at a time: memory stays bounded on any split size
MAX_REFERENCE_COPIES = 4  # reference-kernel interpreters side by side (memory: one arena each)


def kernel_outputs(models: list[Int8Model], shards: Shards, split: str) -> dict[str, np.ndarray]:
    """Each kernel path's N x C int8 outputs on a split's student-size images, by path name;
    the images are streamed from the shards once for all of them. Several interpreters of one
    path (same model file, see ``kernel_path_models``) share that path's images: each runs a
    contiguous part of every chunk."""
    copies: dict[str, list[Int8Model]] = {}
    for model in models:
        copies.setdefault(model.kernels, []).append(model)
    for name, group in copies.items():
        if len({model.path for model in group}) > 1:
            raise ValueError(f"the {name} interpreters given run different model files")
    for model in models:
        shards.require_size("student", model.input_size, str(model.path))
    progress = Progress(f"INT8 inference on {split} ({', '.join(copies)} kernels)",
                        shards.count(split))
    outputs = {name: [np.zeros((0, group[0].num_classes), np.int8)]
               for name, group in copies.items()}
    # one thread per interpreter: an interpreter's run releases the GIL, so the reference
    # kernels (one core each, about 0.3 s per 240 px image) run beside the others, not after
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        for chunk in shards.pixel_chunks(split, "student", CHUNK):
            tasks = [(name, model, part) for name, group in copies.items()
                     for model, part in zip(group, np.array_split(chunk, len(group)))]
            results = pool.map(lambda task: task[1].raw_outputs(task[2]), tasks)
            for (name, _, _), result in zip(tasks, results):
                outputs[name].append(result)
            progress.advance(len(chunk))
    return {name: np.concatenate(parts) for name, parts in outputs.items()}


def kernel_path_models(model_path, kernels=tuple(KERNEL_PATHS)) -> list[Int8Model]:
    """Interpreters of one model for ``kernels``: one per path, and for the reference kernels,
    single-threaded and 10 to 20 times slower than the others, one per CPU core (at most
    MAX_REFERENCE_COPIES), which kernel_outputs runs side by side."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [Int8Model.load(model_path, kernels=name)
            for name in kernels
            for _ in range(min(cores or 1, MAX_REFERENCE_COPIES) if name == "reference" else 1)]


def int8_outputs(model: Int8Model, shards: Shards, split: str) -> np.ndarray:
    """N x C int8 outputs of one model on a split, streamed from the shards."""
    return kernel_outputs([model], shards, split)[model.kernels]


def int8_split_outputs(model_path, prepared_dir, split: str, shards_dir=layout.SHARDS,
                       kernels: tuple[str, ...] = (ADOPTED_KERNEL_PATH,)):
    """(classes, N x C targets, {kernel path: N x C int8 outputs}, the first path's model) for
    one split."""
    dataset = load_prepared(prepared_dir)
    models = kernel_path_models(model_path, kernels)
    if models[0].num_classes != len(dataset.classes):
        raise UserError(f"{model_path} has {models[0].num_classes} outputs but the prepared data "
                        f"has {len(dataset.classes)} classes; rerun the pipeline (dvc repro)")
    shards = Shards.open(shards_dir, dataset)
    targets = dataset.target_matrix(split, np.int64)
    return dataset.classes, targets, kernel_outputs(models, shards, split), models[0]
