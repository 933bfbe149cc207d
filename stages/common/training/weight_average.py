"""An exponential moving average of a model's weights (teacher/student ``ema_decay``).

Training goes on with the raw weights; the average is what each epoch's validation, early
stopping and the weights a phase ends with see. Two callbacks share one ``WeightAverage``:
``swap_in`` comes first in a phase's list (it updates the average after every batch and puts
it in the model at each epoch's end, before the validation), ``swap_out`` comes just before
the epoch's checkpoint (it puts the raw weights back, so that training and a resumed run
continue from them). Every float weight is averaged, BatchNormalization's statistics
included: averaged weights with their raw statistics would not match.

The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after n updates, so that a short
phase is not dominated by its starting weights. The average and its count are kept beside the
phase's resume checkpoints, so a killed phase continues its average too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

keras = tf.keras


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay of update number ``updates`` (1-based)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    def __init__(self, model: keras.Model, decay: float, store: Path, written: Path | None = None):
        """``store``: where a killed run's average is read from; ``written``: where this run's
        is kept (``store`` unless given: a cluster's worker reads the chief's, writes its own)."""
        if not 0.0 < decay < 1.0:
            raise ValueError(f"an average's decay is in (0, 1), not {decay}")
        self.model, self.decay, self.store = model, decay, Path(store)
        self.written = Path(written) if written is not None else self.store
        self.average: list[np.ndarray] | None = None
        self.updates = 0
        self._raw: list[np.ndarray] | None = None
        self.swap_in, self.swap_out = _SwapIn(self), _SwapOut(self)

    def _averaged(self, weights: list[np.ndarray]) -> list[bool]:
        return [np.issubdtype(weight.dtype, np.floating) for weight in weights]

    def start(self) -> None:
        """The average so far: a killed run's, or the weights training starts from."""
        if self.average is not None:
            return
        if self.store.is_file():
            with np.load(self.store) as saved:
                self.updates = int(saved["updates"])
                self.average = [saved[f"w{i}"] for i in range(len(saved.files) - 1)]
        else:
            self.average = [weight.copy() for weight in self.model.get_weights()]

    def update(self) -> None:
        self.updates += 1
        decay = warmed_up_decay(self.decay, self.updates)
        weights = self.model.get_weights()
        for mean, weight, floating in zip(self.average, weights, self._averaged(weights)):
            if floating:
                mean *= decay
                mean += (1.0 - decay) * weight
            else:
                mean[...] = weight

    def put_average(self) -> None:
        self.start()
        self._raw = self.model.get_weights()
        self.model.set_weights(self.average)

    def put_raw(self) -> None:
        if self._raw is not None:
            self.model.set_weights(self._raw)
            self._raw = None

    def save(self) -> None:
        self.written.parent.mkdir(parents=True, exist_ok=True)
        partial = self.written.with_suffix(".partial.npz")
        np.savez(partial, updates=self.updates,
                 **{f"w{i}": mean for i, mean in enumerate(self.average)})
        partial.replace(self.written)

    def forget(self) -> None:
        """The phase is over: its average is in the weights it saved."""
        self.written.unlink(missing_ok=True)


class _SwapIn(keras.callbacks.Callback):
    def __init__(self, average: WeightAverage):
        super().__init__()
        self.average = average

    def on_train_batch_begin(self, batch, logs=None):
        self.average.start()  # here, after BackupAndRestore has put back a killed run's weights

    def on_train_batch_end(self, batch, logs=None):
        self.average.update()

    def on_epoch_end(self, epoch, logs=None):
        self.average.put_average()

    def on_train_end(self, logs=None):
        # the phase ends with the average; early stopping, whose on_train_end runs after this
        # one, may then put back the best epoch's, which it saw averaged
        if self.average.average is not None:
            self.average.model.set_weights(self.average.average)


class _SwapOut(keras.callbacks.Callback):
    def __init__(self, average: WeightAverage):
        super().__init__()
        self.average = average

    def on_epoch_end(self, epoch, logs=None):
        self.average.put_raw()
        self.average.save()
