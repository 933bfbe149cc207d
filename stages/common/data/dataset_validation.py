"""Parsing and validating a dataset in the seed's format (its statistics: dataset_statistics).

    dataset/
      images/...                 (names may contain sub-folders, '/' separated)
      train.txt  val.txt  test.txt

One line per image: ``name.jpg,class1|class2``. ``name.jpg,`` and a bare ``name.jpg`` mean "no
labels". Blank lines, CRLF line ends and a UTF-8 BOM are accepted; spaces around names and labels
are ignored. Lines end at ``\n``, ``\r\n`` or ``\r`` only (not at the other characters that
Python's ``str.splitlines`` splits on), so line numbers are those of any editor, and each line is
decoded on its own: a byte that is not UTF-8 is a defect of its line, not of the file.

Decisions
- The vocabulary is the set of labels used in train.txt, sorted by Unicode code point (Python's
  ``sorted``, the same order as ``strcmp`` on UTF-8 bytes; case-sensitive). A class the model
  never sees a positive of cannot be learnt, so a label that appears in val.txt or test.txt but
  not in train.txt is a defect of that line.
- Every image content (sha256 of the file's bytes) and every name may appear once in the whole
  dataset. When it appears again, the later line is the defective one, in the order train, val,
  test and then line order: in skip mode the evaluation splits lose the copy, not train.
- Labels are compared in Unicode NFC form: ``é`` typed as one code point or as ``e`` plus a
  combining accent is one class, named in NFC. A label holds at most ``MAX_LABEL_BYTES`` bytes of
  UTF-8 and none of the characters ``core/label_text.py`` refuses (control and line-separator
  characters; invisible format characters and the no-break space, which make lookalike
  classes); image names hold no control or line-separator character either.
- All defects are collected in one pass. ``on_defect='fail'`` raises one UserError listing all
  of them; ``'skip'`` drops the defective lines and reports each of them.
- Each split must keep at least one image, and val and test at least one positive label:
  thresholds are tuned on val and the model is judged on test.
- An image may be a symbolic link into the project's DVC cache (``dvc add`` with
  ``cache.type: symlink``); any other link that leaves images/ is refused.
"""
from __future__ import annotations

import errno
import functools
import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from stages.common.core.errors import UserError
from stages.common.data.dataset import IMAGES_FOLDER, SPLITS, Defect, PreparedDataset, Record
from stages.common.data.image_files import format_problem
from stages.common.data.preprocessing import decode_image
from stages.common.data.split_files import Entry, read_split_file


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    height: int  # upright (EXIF orientation applied), as the pipeline sees it
    width: int


@functools.lru_cache(maxsize=None)
def dvc_cache_dir(start: Path) -> Path | None:
    """The resolved file cache of the DVC project holding ``start``, or None outside one.

    Asked only when an image is a link that leaves images/: ``dvc add`` under
    ``cache.type: symlink`` makes every image such a link."""
    try:
        from dvc.repo import Repo

        with Repo(Repo.find_root(str(start))) as repo:
            return Path(repo.cache.local.path).resolve()
    except Exception:  # not a DVC project, or DVC cannot read it: no cache to trust
        return None


def inspect_image(images_dir: Path, name: str, max_pixels: int) -> ImageInfo | tuple[str, str]:
    """Check one image; returns its info, or (kind, reason) of the defect."""
    path = images_dir / name
    try:
        resolved = path.resolve(strict=False)
        if not resolved.is_relative_to(images_dir.resolve()):
            cache = dvc_cache_dir(images_dir.resolve())
            if cache is None or not resolved.is_relative_to(cache):
                return "unsafe_name", ("resolves outside images/ (a symbolic link that points "
                                       "neither inside images/ nor into the project's DVC cache)")
        if not path.exists():
            return "missing_image", f"image not found: {path}"
        if not path.is_file():
            return "unreadable", f"not a regular file: {path}"
        data = path.read_bytes()
    except RuntimeError:  # Python 3.11 raises this for a loop of symbolic links
        return "unreadable", "symbolic link loop: the name never reaches a file"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "unreadable", "symbolic link loop: the name never reaches a file"
        return "unreadable", f"cannot be read: {error.strerror or error}"
    if not data:
        return "empty_file", "empty file (0 bytes)"
    if format_problem(data):
        return "corrupt", format_problem(data)
    try:
        with Image.open(path) as header:
            width, height = header.size
            if width * height > max_pixels:
                return "too_large", (f"{width}x{height} = {width * height} pixels exceeds the "
                                     f"limit prepare.max_image_pixels = {max_pixels}")
            header.load()  # decodes fully: catches truncated files OpenCV would half-decode
    except Exception as error:  # Pillow raises many types for corrupt data
        return "corrupt", f"corrupt or not an image: {error}"
    image = decode_image(data)
    if image is None:
        return "corrupt", "OpenCV cannot decode it"
    return ImageInfo(hashlib.sha256(data).hexdigest(), int(image.shape[0]), int(image.shape[1]))


def _duplicate_kind(first: Entry, split: str) -> str:
    return "duplicate_in_split" if first.split == split else "duplicate_across_splits"


def validate_dataset(dataset_dir: str | Path, max_pixels: int, on_defect: str = "fail",
                     workers: int = 4) -> PreparedDataset:
    """Parse and check the whole dataset; every defect is found in one pass."""
    root = Path(dataset_dir)
    images_dir = root / IMAGES_FOLDER
    if not images_dir.is_dir():
        raise UserError(f"{images_dir}: folder not found (data.dir = {dataset_dir!s} must "
                        "contain images/ and the three split files)")
    entries: dict[str, list[Entry]] = {}
    defects: list[Defect] = []
    sources = {split: str(root / f"{split}.txt") for split in SPLITS}
    for split in SPLITS:
        entries[split], line_defects = read_split_file(root, split)
        defects += line_defects

    def defect(entry: Entry, kind: str, reason: str) -> None:
        defects.append(Defect(sources[entry.split], entry.line, entry.name, kind, reason))

    def inspect(name: str) -> ImageInfo | tuple[str, str]:
        try:
            return inspect_image(images_dir, name, max_pixels)
        except Exception as error:  # one odd file must not lose the defects of all the others
            return "unreadable", f"cannot be checked: {type(error).__name__}: {error}"

    unique_names = sorted({e.name for split in SPLITS for e in entries[split]})
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = dict(zip(unique_names, pool.map(inspect, unique_names)))

    seen_name: dict[str, Entry] = {}
    seen_content: dict[str, Entry] = {}
    valid: dict[str, list[tuple[Entry, ImageInfo]]] = {split: [] for split in SPLITS}
    for split in SPLITS:
        for entry in entries[split]:
            first = seen_name.get(entry.name)
            if first is not None:
                defect(entry, _duplicate_kind(first, split),
                       f"same image already listed in {first.split}.txt line {first.line}")
                continue
            seen_name[entry.name] = entry
            info = results[entry.name]
            if not isinstance(info, ImageInfo):
                defect(entry, *info)
                continue
            twin = seen_content.get(info.sha256)
            if twin is not None:
                defect(entry, _duplicate_kind(twin, split),
                       f"same bytes as {twin.split}.txt line {twin.line} ({twin.name!r})")
                continue
            seen_content[info.sha256] = entry
            valid[split].append((entry, info))

    _require_training_data(sources["train"], entries["train"], valid["train"], defects)
    classes = sorted({label for entry, _ in valid["train"] for label in entry.labels})
    known = set(classes)
    splits: dict[str, list[Record]] = {}
    for split in SPLITS:
        splits[split] = []
        for entry, info in valid[split]:
            unknown = [label for label in entry.labels if label not in known]
            if unknown:
                defect(entry, "unknown_label",
                       f"label {unknown[0]!r} never occurs in train.txt, so it cannot be learnt")
                continue
            splits[split].append(Record(entry.name, list(entry.labels), info.sha256,
                                        info.height, info.width))

    defects.sort(key=lambda d: (SPLITS.index(Path(d.source).stem), d.line))
    if defects and on_defect == "fail":
        raise UserError(f"dataset {root} has {defect_listing(defects)}\n"
                        "Fix them, or set prepare.on_defect: skip to drop these lines.")
    for split in ("val", "test"):
        _require_evaluable(sources[split], split, splits[split], len(entries[split]))
    return PreparedDataset(str(dataset_dir), classes, splits, defects)


def defect_listing(defects: list[Defect]) -> str:
    counts = Counter(d.kind for d in defects)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return f"{len(defects)} defect(s) ({summary}):\n" + "\n".join(f"  {d}" for d in defects)


def _require_training_data(source: str, entries: list[Entry], valid: list,
                           defects: list[Defect]) -> None:
    """Stop on the real cause when train.txt gives nothing to learn from: every val/test label
    would otherwise be reported as unknown, hiding it."""
    own = [d for d in defects if d.source == source]
    if not entries and not own:
        raise UserError(f"{source}: no image line at all; the model needs training images "
                        "(one line per image: name.jpg,label1|label2)")
    if not valid:
        raise UserError(f"{source}: no usable training image; every line has a defect, "
                        f"{defect_listing(own)}")
    if not any(entry.labels for entry, _ in valid):
        raise UserError(f"{source}: no usable training image has a label; a classifier needs "
                        "classes (name.jpg,label1|label2)")


def _require_evaluable(source: str, split: str, records: list[Record], lines: int) -> None:
    """Thresholds are tuned on val and the model judged on test: each needs images, and a
    positive label, or its macro-F1 is not defined."""
    purpose = "tune the thresholds on" if split == "val" else "evaluate the model on"
    if not records:
        why = (
            "it has no image line"
            if lines == 0
            else f"all its {lines} line(s) were dropped as defects"
        )
        raise UserError(f"{source}: no usable image ({why}); the pipeline needs images to "
                        f"{purpose}")
    if not any(record.labels for record in records):
        raise UserError(f"{source}: none of its {len(records)} image(s) has a label; macro-F1 "
                        f"needs at least one positive to {purpose}")
