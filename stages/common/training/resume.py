"""Where a stage keeps what it needs to continue after being killed (``ResumeState``), and the
check that every worker of a cluster sees the same progress (``check_same_progress``).
Checkpoints are keyed by a fingerprint of the stage's params and data; a different fingerprint
starts over."""
from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import tensorflow as tf

from stages.common.core import layout
from stages.common.core.errors import UserError
from stages.common.core.output_folders import check_replaceable

keras = tf.keras


class ResumeState:
    """Where a stage keeps what it needs to continue after being killed.

    A worker of a multi-worker cluster other than the chief is given a private ``scratch``
    folder: it reads the chief's checkpoints when it sees them (a shared filesystem) but writes
    nothing beside them; its own copies go to ``scratch``, which its caller removes.
    """

    def __init__(self, directory: str | Path, key: str, scratch: Path | None = None):
        self.directory = Path(directory)
        self.scratch = scratch
        marker = self.directory / "fingerprint.txt"  # also what tells the folder is ours
        if scratch is not None:
            if not (marker.is_file() and marker.read_text() == key):
                self.directory = scratch  # nothing of the chief's to resume from
            return
        check_replaceable(self.directory, lambda folder: (folder / marker.name).is_file(),
                          "resume checkpoints of this stage")
        if marker.is_file() and marker.read_text() == key:
            return  # progress of this very training, to resume from
        if self.directory.exists():
            shutil.rmtree(self.directory)  # params or data changed: old progress is not valid
        self.directory.mkdir(parents=True)
        # written whole or not at all: other workers may be reading it at this moment
        partial = marker.with_suffix(".partial")
        partial.write_text(key)
        partial.replace(marker)

    def progress(self) -> list[str]:
        """What an earlier run left: finished phases, and phases with an epoch checkpoint."""
        done = sorted(path.name for path in self.directory.glob("*_done.json"))
        backups = sorted(path.name for path in self.directory.glob("*_backup")
                         if any(item.is_file() for item in path.glob("**/*")))
        return done + backups

    def has_progress(self) -> bool:
        """Whether an earlier run left a finished phase or an epoch checkpoint to resume from."""
        return bool(self.progress())

    def backup_dir(self, phase: str) -> Path:
        return self.directory / f"{phase}_backup"

    def _weights(self, phase: str, folder: Path | None = None) -> Path:
        # TensorFlow checkpoint format: HDF5 cannot hold a QAT model (duplicate variable names)
        return (folder or self.directory) / f"{phase}_done" / "weights"

    def weight_average_files(self, phase: str) -> tuple[Path, Path]:
        """(where a killed run's average of the weights is read from, where this run keeps its
        own) for a phase with ``ema_decay``: a worker reads the chief's, like its checkpoints."""
        name = f"{phase}_weight_average.npz"
        return self.directory / name, (self.scratch or self.directory) / name

    def _summary(self, phase: str, folder: Path | None = None) -> Path:
        return (folder or self.directory) / f"{phase}_done.json"

    def finished(self, phase: str) -> dict | None:
        if self._summary(phase).exists() and self._weights(phase).with_suffix(".index").exists():
            return json.loads(self._summary(phase).read_text())
        return None

    def restore(self, phase: str, model: keras.Model) -> None:
        model.load_weights(self._weights(phase)).assert_existing_objects_matched()

    def finish(self, phase: str, model: keras.Model, summary: dict) -> None:
        # every worker saves (reading synchronised variables is a collective op); only the
        # chief's copy lands in the checkpoint folder
        folder = self.scratch or self.directory
        model.save_weights(self._weights(phase, folder))
        self._summary(phase, folder).write_text(json.dumps(summary))

    def clear(self) -> None:
        if self.scratch is None:  # a worker's scratch is its caller's to remove
            shutil.rmtree(self.directory, ignore_errors=True)


def check_same_progress(state: ResumeState, strategy: tf.distribute.Strategy) -> None:
    """Workers that see different checkpoints would run different phases and wait for each
    other forever: refuse, in words, before any training."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    signature = zlib.crc32("|".join(state.progress()).encode()) & 0x7FFFFFFF
    seen = strategy.gather(strategy.run(lambda: tf.constant([signature], tf.int64)), axis=0)
    if len(set(seen.numpy().tolist())) > 1:
        raise UserError(f"{state.directory}: the workers see different resume checkpoints (this "
                        f"one: {state.progress() or 'none'}). Put {layout.CHECKPOINTS} on a "
                        "filesystem every machine shares, or delete it on the chief to start over")
