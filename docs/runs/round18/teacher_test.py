"""Test macro-F1 of the seed-2 teachers (260, 300 px) and of their average, float, on the
1000 test images."""
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

dataset = load_prepared("/work/s2b/data/prepared")
classes = dataset.classes
def split_arrays(ds, split, size):
    s = read_labelled_split(ds, split)
    x = np.stack([letterbox(load_image(s.images_dir / e.name), size) for e in s.entries])
    return normalize_teacher(x), truth_matrix(s, classes)
out = {}
for name, root, size in [("t260", "/work/s2b", 260), ("t300", "/work/t300_s2", 300)]:
    teacher, meta = load_trained(Path(root) / "models/teacher", classes)
    assert meta["input_size"] == size, meta
    f = tf.function(lambda v: teacher(v, training=False))
    for split, ds in [("val", "/work/s2b/data/hard_s2"),
                      ("test", "/work/s2b/data/hard_s2_test1000")]:
        x, y = split_arrays(ds, split, size)
        logits = np.concatenate([f(x[i:i+32]).numpy() for i in range(0, len(x), 32)])
        out[(name, split)] = (sigmoid(logits), y)
grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
def report(label, pv, yv, pt, yt):
    best = max(grid, key=lambda t: f1_macro(yv, pv >= t))
    print(f"{label}: val@0.5 {f1_macro(yv, pv>=0.5):.4f} test@0.5 {f1_macro(yt, pt>=0.5):.4f} "
          f"val-tuned {best:.2f}: test {f1_macro(yt, pt>=best):.4f}", flush=True)
for name in ["t260", "t300"]:
    report(name, *out[(name, "val")], *out[(name, "test")])
pv = (out[("t260","val")][0] + out[("t300","val")][0]) / 2
pt = (out[("t260","test")][0] + out[("t300","test")][0]) / 2
report("average", pv, out[("t260","val")][1], pt, out[("t260","test")][1])
