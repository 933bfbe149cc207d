"""The prepared dataset: its classes and the records of each split, as the prepare stage stores
them (data/prepared/dataset.json) and every later stage reads them."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError, way_back
from stages.common.core.hashing import json_sha256
from stages.common.core.output_folders import replaced_folder

SPLITS = ("train", "val", "test")
UNLABELLED = "unlabelled"  # images without labels (stage unlabelled_images): their split name
UNLABELLED_FILE = "unlabelled.txt"  # their optional list, beside the split files
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
        return json_sha256(
            {
                "classes": self.classes,
                "splits": {
                    s: [[r.name, r.sha256, r.labels] for r in rs] for s, rs in self.splits.items()
                },
            }
        )

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



PREPARED_FILES = ("labels.txt", "dataset.json", "train.csv", "val.csv", "test.csv", "defects.txt")


def is_prepared_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier output of ``write_prepared`` and nothing else."""
    names = {path.name for path in folder.iterdir()}
    return "dataset.json" in names and names <= set(PREPARED_FILES)


def write_prepared(out_dir: str | Path, dataset: PreparedDataset) -> None:
    """The prepare stage's folder, written whole: beside it, then swapped in at once, so a kill
    leaves the previous files or the new ones, never labels.txt of one run and dataset.json of
    another. A folder holding anything else is refused, never emptied."""
    with replaced_folder(out_dir, is_prepared_folder, "the prepare stage's output",
                         mark=False) as out:
        write_labels(out / "labels.txt", dataset.classes)
        (out / "dataset.json").write_text(
            json.dumps(dataset.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        for split in dataset.splits:  # name and one 0/1 column per class, in output order
            with open(out / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["name", *dataset.classes])
                writer.writerows(
                    [r.name, *target]
                    for r, target in zip(dataset.splits[split], dataset.targets(split))
                )
        (out / "defects.txt").write_text("".join(f"{d}\n" for d in dataset.defects),
                                         encoding="utf-8")


def write_labels(path: str | Path, classes: list[str]) -> None:
    """labels.txt: one class per line, line i + 1 for output i, UTF-8, each line ending in \\n."""
    Path(path).write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")


def load_prepared(directory: str | Path) -> PreparedDataset:
    """The prepare stage's output, as later stages read it."""
    path = Path(directory) / "dataset.json"
    try:
        return PreparedDataset.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UserError(
            f"{path} not found: run the prepare stage first (dvc repro prepare)"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(
            f"{path}: damaged ({type(error).__name__}: {error}); {way_back(directory, 'prepare')}"
        ) from None
