"""A packaged model scored on a labelled split, and two packages compared on the same images.

The decisions are the phone's: the five outputs alone (``Predictor``: the shipped thresholds in
int8 units), on images read from the dataset folder. So a split the pipeline never saw (a larger
test set, new photographs labelled later) measures what the phone would do on it.

Two packages on the same images differ by less than the noise of a small test set more often
than not: 200 images give a paired 90 % interval about 0.08 wide on macro-F1 (docs/benchmark.md);
``metrics.paired_bootstrap`` gives that interval for the two packages' decisions.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError
from stages.common.data.dataset import IMAGES_FOLDER
from stages.common.data.image_files import read_image_file
from stages.common.data.split_files import Entry, read_split_file
from stages.common.scoring.metrics import multilabel_metrics


@dataclass(frozen=True)
class LabelledSplit:
    source: Path  # the split file, for messages
    images_dir: Path
    entries: list[Entry]


def read_labelled_split(dataset_dir: str | Path, split: str) -> LabelledSplit:
    """The split's lines; UserError listing the bad lines (file:line, the first 20) or for an
    empty split."""
    dataset_dir = Path(dataset_dir)
    entries, defects = read_split_file(dataset_dir, split)
    source = dataset_dir / f"{split}.txt"
    if defects:
        shown = "\n".join(f"  {defect}" for defect in defects[:20])
        more = f"\n  ... and {len(defects) - 20} more" if len(defects) > 20 else ""
        raise UserError(f"{source}: {len(defects)} bad line(s); nothing was scored:\n"
                        f"{shown}{more}")
    if not entries:
        raise UserError(f"{source}: no images listed; nothing to score")
    return LabelledSplit(source, dataset_dir / IMAGES_FOLDER, entries)


def truth_matrix(split: LabelledSplit, classes: list[str]) -> np.ndarray:
    """N x C booleans in ``classes``' order; UserError naming the line of a label the package
    does not know (its metrics would silently leave that label out)."""
    index = {name: i for i, name in enumerate(classes)}
    truth = np.zeros((len(split.entries), len(classes)), dtype=bool)
    for row, entry in enumerate(split.entries):
        for label in entry.labels:
            if label not in index:
                raise UserError(f"{split.source}:{entry.line}: label {label!r} is not one of "
                                f"the package's {len(classes)} classes ({', '.join(classes)})")
            truth[row, index[label]] = True
    return truth


def package_decisions(predictors: list, split: LabelledSplit,
                      classes: list[str]) -> list[np.ndarray]:
    """N x C decisions of each package, columns in ``classes``' order. Each image is read and
    decoded once for all of them. An image that cannot be
    classified stops the scoring with its line: a score without it would not be the split's."""
    column = {name: i for i, name in enumerate(classes)}
    decisions = [np.zeros((len(split.entries), len(classes)), dtype=bool) for _ in predictors]
    for row, entry in enumerate(split.entries):
        try:
            image = read_image_file(split.images_dir / entry.name,
                                    predictors[0].max_image_pixels)
        except UserError as error:
            raise UserError(f"{split.source}:{entry.line}: {entry.name}: {error}") from None
        for predictor, chosen in zip(predictors, decisions):
            for label in predictor.predict_image(image)["labels"]:
                chosen[row, column[label["class"]]] = True
    return decisions


def split_scores(truth: np.ndarray, decisions: np.ndarray, classes: list[str]) -> dict:
    """multilabel_metrics with the per-class rows named, and the number of images."""
    scores = multilabel_metrics(truth, decisions)
    scores["per_class"] = {name: row for name, row in zip(classes, scores["per_class"])}
    scores["images"] = int(len(truth))
    return scores
