"""Small data for tests: the deployment letterbox of a split's images (the reference the shards
are checked against), a source with the element structure of ``Shards.records``, and the files
the training stages read (``prepared_for_training``)."""
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from stages.common.data.dataset import IMAGES_FOLDER, Record
from stages.common.data.image_files import load_image
from stages.common.data.preprocessing import content_box, letterbox
from stages.common.data.tfrecord_shards import write_shards
from stages.common.models.architectures import build_student
from stages.common.models.pretrained import load_imagenet_lite


def letterbox_split(dataset_dir: str | Path, records: list[Record],
                    size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every record decoded and letterboxed; returns (pixels, content boxes)."""
    images_dir = Path(dataset_dir) / IMAGES_FOLDER
    pixels = np.stack([letterbox(load_image(images_dir / r.name), size) for r in records])
    boxes = np.array([content_box(r.height, r.width, size) for r in records],
                     dtype=np.int32).reshape(-1, 4)
    return pixels, boxes


def in_memory_source(pixels: list[np.ndarray], boxes: list[np.ndarray],
                     targets: np.ndarray) -> tf.data.Dataset:
    """Elements ``((pixels per view), (boxes per view), targets, index)`` from arrays."""
    return tf.data.Dataset.from_tensor_slices((tuple(pixels), tuple(boxes),
                                               targets.astype(np.float32),
                                               np.arange(len(targets), dtype=np.int64)))


def prepared_for_training(root: Path, dataset, size: int) -> tuple[Path, Path, Path]:
    """What the training stages read, written under ``root`` for ``dataset``: the prepare
    stage's folder, shards at ``size`` for student and teacher, and the ImageNet Lite1 weights
    as a local file. Returns (prepared, shards, weights)."""
    prepared = root / "prepared"
    prepared.mkdir()
    (prepared / "dataset.json").write_text(json.dumps(dataset.to_json()))
    write_shards(dataset, root / "shards", {"student": size, "teacher": size})
    imagenet = build_student(1000, dropout=0.0, input_size=240)
    load_imagenet_lite(imagenet)
    weights = root / "efficientnet_lite1_imagenet.h5"
    imagenet.save_weights(weights)
    return prepared, root / "shards", weights


def validated_records(root: Path):
    """The dataset under ``root / "data"`` as the prepare stage validates it."""
    from stages.common.data.dataset_validation import validate_dataset

    return validate_dataset(root / "data", max_pixels=10**7)
