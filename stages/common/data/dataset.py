"""The prepared dataset: its classes and the records of each split, as the prepare stage stores
them (data/prepared/dataset.json) and every later stage reads them."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError
from stages.common.core.hashing import json_sha256


SPLITS = ("train", "val", "test")
IMAGES_FOLDER = "images"  # inside the dataset folder; image names are relative to it


@dataclass(frozen=True)
class Defect:
    source: str  # the split file as the user knows it, e.g. data/demo/train.txt
    line: int
    name: str
    kind: str  # short category, used to count defects by reason
    reason: str

    def __str__(self) -> str:
        subject = f" {self.name!r}:" if self.name else ""
        return f"{self.source}:{self.line}:{subject} {self.reason}"



@dataclass
class Record:
    """A valid line: what later stages need."""

    name: str
    labels: list[str]
    sha256: str
    height: int
    width: int


@dataclass
class PreparedDataset:
    dataset_dir: str
    classes: list[str]
    splits: dict[str, list[Record]]
    defects: list[Defect] = field(default_factory=list)  # lines dropped (on_defect: skip)

    def targets(self, split: str) -> list[list[int]]:
        index = {name: i for i, name in enumerate(self.classes)}
        rows = []
        for record in self.splits[split]:
            row = [0] * len(self.classes)
            for label in record.labels:
                row[index[label]] = 1
            rows.append(row)
        return rows

    def target_matrix(self, split: str, dtype=np.float32) -> np.ndarray:
        """``targets`` as an N x C array (N x C even for an empty split)."""
        return np.array(self.targets(split), dtype=dtype).reshape(-1, len(self.classes))

    def fingerprint(self) -> str:
        """sha256 of the classes and every split's (name, content hash, labels): the exact data."""
        return json_sha256({
            "classes": self.classes,
            "splits": {s: [[r.name, r.sha256, r.labels] for r in rs] for s, rs in self.splits.items()},
        })

    def to_json(self) -> dict:
        return {
            "dataset_dir": self.dataset_dir,
            "fingerprint": self.fingerprint(),
            "classes": self.classes,
            "splits": {s: [asdict(r) for r in rs] for s, rs in self.splits.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> "PreparedDataset":
        splits = {s: [Record(**r) for r in rs] for s, rs in data["splits"].items()}
        return cls(data["dataset_dir"], data["classes"], splits)



def write_labels(path: str | Path, classes: list[str]) -> None:
    """labels.txt: one class per line, line i + 1 for output i, UTF-8, each line ending in \\n."""
    Path(path).write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")


def load_prepared(directory: str | Path) -> PreparedDataset:
    """The prepare stage's output, as later stages read it."""
    path = Path(directory) / "dataset.json"
    try:
        return PreparedDataset.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UserError(f"{path} not found: run the prepare stage first (dvc repro prepare)") from None
