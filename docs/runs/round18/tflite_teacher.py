import sys
import time

sys.path.insert(0, "/work/main")
from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from stages.common.data.dataset import load_prepared
from stages.common.models.trained_models import load_trained

root = Path("/work/s2b")
dataset = load_prepared(root / "data/prepared")
teacher, meta = load_trained(root / "models/teacher", dataset.classes)
t = time.monotonic()
conv = tf.lite.TFLiteConverter.from_keras_model(teacher)
blob = conv.convert()
print(f"convert {time.monotonic()-t:.1f} s, {len(blob)/1e6:.1f} MB", flush=True)
x = np.random.RandomState(0).uniform(0, 255, (32, 260, 260, 3)).astype(np.float32)
print("teacher input dtype", teacher.inputs[0].dtype, teacher.inputs[0].shape)
interp = Interpreter(model_content=blob, num_threads=2)
inp = interp.get_input_details()[0]
interp.resize_tensor_input(inp["index"], [32, 260, 260, 3])
interp.allocate_tensors()
interp.set_tensor(inp["index"], x)
interp.invoke()
t = time.monotonic()
for _ in range(5):
    interp.set_tensor(inp["index"], x)
    interp.invoke()
tl = (time.monotonic() - t) / 5
out = interp.get_tensor(interp.get_output_details()[0]["index"])
f = tf.function(lambda v: teacher(v, training=False))
f(x)
t = time.monotonic()
for _ in range(5):
    ref = f(x).numpy()
tk = (time.monotonic() - t) / 5
print(f"per batch of 32: tflite xnnpack {tl:.2f} s, keras compiled {tk:.2f} s; "
      f"max diff {np.abs(out-ref).max():.2e}")
