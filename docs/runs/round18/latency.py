"""INT8 latency of two packaged models on this CPU (LiteRT, XNNPACK), alternated in rounds."""
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

models = sys.argv[1:]
interps = []
for path in models:
    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    x = np.random.RandomState(0).randint(0, 256, inp["shape"]).astype(inp["dtype"])
    it.set_tensor(inp["index"], x)
    for _ in range(10):
        it.invoke()
    interps.append(it)
times = {m: [] for m in models}
for _ in range(5):
    for m, it in zip(models, interps):
        t = time.perf_counter()
        for _ in range(50):
            it.invoke()
        times[m].append((time.perf_counter() - t) / 50 * 1000)
for m in models:
    print(f"{m}: median of 5 rounds {np.median(times[m]):.2f} ms per image, 1 thread "
          f"(rounds {min(times[m]):.2f} .. {max(times[m]):.2f})")
