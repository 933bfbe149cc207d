"""Images without labels, which only the teacher labels: the dataset's optional
``unlabelled.txt``, beside the three split files.

    dataset/
      images/...
      train.txt  val.txt  test.txt
      unlabelled.txt        (optional: one image name per line, no labels)

A line of train.txt with no labels is an image in which no class appears; an image in
unlabelled.txt is one whose classes nobody wrote down. The student's distilling phases (its
fine-tune phase and QAT) can train on them with ``distillation.use_unlabelled``: each gets the
teacher's sigmoid on its augmented view as its hard target. What that gives on the hard
benchmark, against the labels alone at the same steps and at about the same time, is measured
in docs/benchmark.md (fourteenth and fifteenth rounds) rather than quoted here, where it went
stale once already.

The lines follow train.txt's rules for names (``split_files``); a line that carries labels is a
defect of its own (a labelled image belongs in train.txt). Every image must be new to the whole
dataset: one listed again, or with the bytes of an image of train, val or test, is a defect,
since the teacher would hand the student its own view of a val or test image.
``prepare.on_defect`` decides, as for the split files: fail lists every defect, skip drops the
lines and reports them.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stages.common.core.errors import UserError
from stages.common.data.dataset import (
    IMAGES_FOLDER,
    UNLABELLED,
    UNLABELLED_FILE,
    Defect,
    PreparedDataset,
    Record,
)
from stages.common.data.dataset_validation import ImageInfo, defect_listing, inspect_image
from stages.common.data.split_files import parse_split_lines, split_lines


def read_unlabelled(dataset_dir: str | Path, labelled: PreparedDataset, max_pixels: int,
                    on_defect: str = "fail", workers: int = 4) -> PreparedDataset:
    """The images of ``dataset_dir``'s unlabelled.txt, checked against the prepared, labelled
    ``labelled``: a dataset with the same classes and one split, ``unlabelled`` (empty when
    there is no such file)."""
    root = Path(dataset_dir)
    path = root / UNLABELLED_FILE
    source = str(path)
    try:
        data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    except FileNotFoundError:
        data = b""
    except OSError as error:
        raise UserError(f"{path}: cannot be read: {error.strerror or error}") from None
    entries, defects = parse_split_lines(split_lines(data), UNLABELLED, source)

    def defect(entry, kind: str, reason: str) -> None:
        defects.append(Defect(source, entry.line, entry.name, kind, reason))

    images_dir = root / IMAGES_FOLDER

    def inspect(name: str) -> ImageInfo | tuple[str, str]:
        try:
            return inspect_image(images_dir, name, max_pixels)
        except Exception as error:  # one odd file must not lose the defects of all the others
            return "unreadable", f"cannot be checked: {type(error).__name__}: {error}"

    unlabelled_entries = []
    for entry in entries:
        if entry.labels:
            defect(entry, "labelled_line",
                   f"has labels ({'|'.join(entry.labels)}): {UNLABELLED_FILE} lists images whose "
                   "labels are not known; an image with labels belongs in train.txt")
        else:
            unlabelled_entries.append(entry)
    names = sorted({entry.name for entry in unlabelled_entries})
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = dict(zip(names, pool.map(inspect, names)))

    labelled_names = {r.name: split for split, rs in labelled.splits.items() for r in rs}
    labelled_content = {r.sha256: (split, r.name)
                        for split, rs in labelled.splits.items() for r in rs}
    seen_name: dict[str, int] = {}
    seen_content: dict[str, object] = {}
    records = []
    for entry in unlabelled_entries:
        if entry.name in labelled_names:
            defect(entry, "duplicate_across_splits",
                   f"already listed in {labelled_names[entry.name]}.txt, with its labels")
            continue
        if entry.name in seen_name:
            defect(entry, "duplicate_in_split",
                   f"same image already listed at line {seen_name[entry.name]}")
            continue
        seen_name[entry.name] = entry.line
        info = results[entry.name]
        if not isinstance(info, ImageInfo):
            defect(entry, *info)
            continue
        if info.sha256 in labelled_content:
            split, name = labelled_content[info.sha256]
            defect(entry, "duplicate_across_splits", f"same bytes as {name!r} of {split}.txt")
            continue
        twin = seen_content.get(info.sha256)
        if twin is not None:
            defect(entry, "duplicate_in_split",
                   f"same bytes as line {twin.line} ({twin.name!r})")
            continue
        seen_content[info.sha256] = entry
        records.append(Record(entry.name, [], info.sha256, info.height, info.width))

    defects.sort(key=lambda d: d.line)
    if defects and on_defect == "fail":
        raise UserError(f"{path} has {defect_listing(defects)}\n"
                        "Fix them, or set prepare.on_defect: skip to drop these lines.")
    return PreparedDataset(str(dataset_dir), list(labelled.classes), {UNLABELLED: records},
                           defects)
