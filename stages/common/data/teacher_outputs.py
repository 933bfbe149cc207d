"""The teacher's logits saved beside the student's model, under the key of everything that made
them, so that QAT reads them instead of running the teacher again; a damaged file is named."""
from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError, way_back
from stages.common.core.hashing import file_sha256, json_sha256
from stages.common.core.params_schema import AugmentationParams
from stages.common.data.dataset import PreparedDataset

TEACHER_OUTPUTS_FILE = "teacher_outputs.npz"  # in the student's model folder


@dataclass
class TeacherOutputs:
    """The teacher's logits on the un-augmented val images (N x C) and on each fixed augmented
    pass of the training images (pass k made with ``augmentation_pass`` k; images without labels,
    when they join, after the training images), under the key of
    everything that made them. The student stage saves them beside its model; QAT, which
    distils from the same teacher on the same passes, reads them instead of running the teacher
    again."""

    key: str
    val: np.ndarray
    passes: list

    @staticmethod
    def key_of(teacher_weights: Path, teacher_size: int, seed: int,
               augmentation: AugmentationParams, batch_size: int, dataset: PreparedDataset,
               shuffle_buffer: int, unlabelled_fingerprint: str | None = None) -> str:
        """``shuffle_buffer`` draws a pass's batches, and so, with mixup, which images blend.
        ``unlabelled_fingerprint``: of the images without labels the passes also cover."""
        made_of = (file_sha256(teacher_weights), teacher_size, seed, asdict(augmentation),
                   batch_size, dataset.fingerprint(), shuffle_buffer)
        if unlabelled_fingerprint is not None:
            made_of += (unlabelled_fingerprint,)
        return json_sha256(made_of)

    def save(self, path: Path) -> None:
        np.savez(path, key=np.array(self.key), val=self.val,
                 **{f"pass_{number}": logits for number, logits in enumerate(self.passes)})

    @classmethod
    def load(cls, path: Path, key: str, shape: tuple[int, int, int]) -> "TeacherOutputs | None":
        """The saved outputs if they were made under ``key``; None if absent or made otherwise.
        ``shape``: (val images, training images, classes) the arrays must have. A damaged file,
        or one whose arrays have other shapes, is a UserError naming it."""
        if not Path(path).is_file():
            return None
        val_count, train_count, classes = shape
        try:
            with np.load(path, allow_pickle=False) as saved:
                if "key" not in saved.files or str(saved["key"]) != key:
                    return None
                count = sum(name.startswith("pass_") for name in saved.files)
                outputs = cls(key, saved["val"],
                              [saved[f"pass_{number}"] for number in range(count)])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise UserError(f"{path}: damaged ({error}); {way_back(path, 'train_student')}"
                            ) from None
        wrong = [f"{name} is {tuple(array.shape)}, expected {expected}"
                 for name, array, expected in (
                     [("val", outputs.val, (val_count, classes))]
                     + [(f"pass_{n}", logits, (train_count, classes))
                        for n, logits in enumerate(outputs.passes)])
                 if tuple(array.shape) != expected or array.dtype.kind != "f"]
        if wrong:
            raise UserError(f"{path}: {'; '.join(wrong)} (float logits per image and class); "
                            f"{way_back(path, 'train_student')}")
        return outputs
