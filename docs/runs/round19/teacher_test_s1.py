"""Test macro-F1 of seed 1's 300 px teacher (float), on the 1000 test images, as
docs/runs/round18/teacher_test.py measured seed 2's."""
import sys

sys.path.insert(0, "/work/main")
from pathlib import Path

import numpy as np
import tensorflow as tf

from stages.common.data.dataset import load_prepared
from stages.common.data.image_files import load_image
from stages.common.data.preprocessing import letterbox, normalize_teacher
from stages.common.evaluation.package_scoring import read_labelled_split, truth_matrix
from stages.common.models.trained_models import load_trained
from stages.common.scoring.metrics import f1_macro, sigmoid

ROOT = Path("/work/r18_s1")
classes = load_prepared(ROOT / "data/prepared").classes
teacher, meta = load_trained(ROOT / "models/teacher", classes)
assert meta["input_size"] == 300, meta
forward = tf.function(lambda batch: teacher(batch, training=False))


def probabilities(dataset, split):
    labelled = read_labelled_split(dataset, split)
    images = np.stack([letterbox(load_image(labelled.images_dir / entry.name), 300)
                       for entry in labelled.entries])
    images = normalize_teacher(images)
    logits = np.concatenate([forward(images[i:i + 32]).numpy()
                             for i in range(0, len(images), 32)])
    return sigmoid(logits), truth_matrix(labelled, classes)


val_p, val_y = probabilities(ROOT / "data/hard_s1", "val")
test_p, test_y = probabilities(ROOT / "data/hard_s1_test1000", "test")
grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
best = max(grid, key=lambda t: f1_macro(val_y, val_p >= t))
print(f"seed 1 teacher at 300 px: val@0.5 {f1_macro(val_y, val_p >= 0.5):.4f} "
      f"test@0.5 {f1_macro(test_y, test_p >= 0.5):.4f} "
      f"val-tuned {best:.2f}: test {f1_macro(test_y, test_p >= best):.4f}", flush=True)
