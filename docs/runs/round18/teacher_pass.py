"""Profile one teacher pass: eager calls (today) against a compiled call."""
import sys
import time

sys.path.insert(0, "/work/main")
from pathlib import Path

import numpy as np
import tensorflow as tf

from stages.common.core.params import load_params
from stages.common.data import input_pipeline as ip
from stages.common.data.dataset import load_prepared
from stages.common.data.tfrecord_shards import Shards, open_unlabelled
from stages.common.models.trained_models import load_trained

root = Path("/work/s2b")
params = load_params(root / "params.yaml")
dataset = load_prepared(root / "data/prepared")
teacher, meta = load_trained(root / "models/teacher", dataset.classes)
sizes = {"student": params.student.input_size, "teacher": meta["input_size"]}
shards = Shards.open(root / "data/shards", dataset, sizes)
unl = open_unlabelled(root / "data/unlabelled", dataset, sizes)
augment = ip.Augmentation.from_params(params.augmentation)
bs = params.student.batch_size
print("batch", bs, "sizes", sizes, flush=True)

def run(call, label):
    t = time.monotonic()
    out = {}
    data_t = 0.0
    it = iter(ip._pass_batches(shards, ["teacher"], 0, bs, params.seed, augment,
                               params.shards.shuffle_buffer, keep_index=True, unlabelled=unl))
    while True:
        d0 = time.monotonic()
        try:
            (images, index), _ = next(it)
        except StopIteration:
            break
        data_t += time.monotonic() - d0
        out_batch = call(images).numpy()
        for i, row in zip(index.numpy(), out_batch):
            out[int(i)] = row
    total = time.monotonic() - t
    print(f"{label}: {total:.1f} s total, data {data_t:.1f} s, {len(out)} images", flush=True)
    return np.stack([out[i] for i in sorted(out)])

# data alone
t = time.monotonic()
for _ in ip._pass_batches(shards, ["teacher"], 0, bs, params.seed, augment,
                          params.shards.shuffle_buffer, keep_index=True, unlabelled=unl):
    pass
print(f"data alone: {time.monotonic() - t:.1f} s", flush=True)
compiled = tf.function(lambda x: teacher(x, training=False), reduce_retracing=True)
which = sys.argv[1:] or ["eager", "compiled"]
res = {}
if "eager" in which:
    res["eager"] = run(lambda x: teacher(x, training=False), "eager")
if "compiled" in which:
    res["compiled"] = run(compiled, "compiled (tf.function)")
if "jit" in which:
    jit = tf.function(lambda x: teacher(x, training=False), jit_compile=True)
    res["jit"] = run(jit, "xla")
if len(res) > 1:
    a, b = list(res.values())[:2]
    print("max |diff| logits", float(np.abs(a - b).max()))
