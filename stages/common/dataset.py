"""Parsing and validating a dataset in the seed's format, and its statistics.

    dataset/
      images/...                 (names may contain sub-folders, '/' separated)
      train.txt  val.txt  test.txt

One line per image: ``name.jpg,class1|class2``. ``name.jpg,`` and a bare ``name.jpg`` mean "no
labels". Blank lines, CRLF line ends and a UTF-8 BOM are accepted; spaces around names and labels
are ignored.

Decisions
- The vocabulary is the set of labels used in train.txt, sorted by Unicode code point (Python's
  ``sorted``, the same order as ``strcmp`` on UTF-8 bytes; case-sensitive). A class the model
  never sees a positive of cannot be learnt, so a label that appears in val.txt or test.txt but
  not in train.txt is a defect of that line.
- Every image content (sha256 of the file's bytes) and every name may appear once in the whole
  dataset. When it appears again, the later line is the defective one, in the order train, val,
  test and then line order: in skip mode the evaluation splits lose the copy, not train.
- All defects are collected in one pass. ``on_defect='fail'`` raises one UserError listing all
  of them; ``'skip'`` drops the defective lines and reports each of them.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from .errors import UserError
from .hashing import json_sha256
from .preprocessing import decode_image

SPLITS = ("train", "val", "test")
IMAGES_FOLDER = "images"

# Pillow's own decompression-bomb check is replaced by our explicit pixel limit.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Entry:
    """One non-blank line of a split file."""

    split: str
    line: int
    name: str
    labels: tuple[str, ...]


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


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    height: int  # upright (EXIF orientation applied), as the pipeline sees it
    width: int


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


class _Malformed(Exception):
    def __init__(self, kind: str, reason: str, name: str = ""):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.name = name  # the image name when it could be parsed


_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_name(name: str) -> None:
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        raise _Malformed("unsafe_name", "absolute path: names are relative to images/")
    if "\\" in name:
        raise _Malformed("unsafe_name", "backslash in name: use '/' between folders")
    parts = name.split("/")
    if ".." in parts:
        raise _Malformed("unsafe_name", "name escapes images/ ('..' is not allowed)")
    if any(part in ("", ".") for part in parts):
        raise _Malformed("malformed_line", "empty or '.' folder component in name")


def parse_line(text: str) -> tuple[str, tuple[str, ...]]:
    """Parse ``name[,label|label...]``; raises _Malformed with the reason."""
    name, comma, rest = text.partition(",")
    if comma and "," in rest:
        raise _Malformed("malformed_line", "more than one comma (labels are separated by '|')")
    name = name.strip()
    if not name:
        raise _Malformed("malformed_line", "no image name before the comma")
    try:
        _check_name(name)
    except _Malformed as problem:
        problem.name = name
        raise
    rest = rest.strip()
    labels = tuple(label.strip() for label in rest.split("|")) if rest else ()
    if any(not label for label in labels):
        raise _Malformed("malformed_line", "empty label (check the '|' separators)")
    repeated = [label for label, n in Counter(labels).items() if n > 1]
    if repeated:
        raise _Malformed("malformed_line", f"label {repeated[0]!r} given twice")
    return name, labels


def parse_split_text(text: str, split: str, source: str) -> tuple[list[Entry], list[Defect]]:
    """Parse a split file's text (BOM already removed); returns entries and line defects."""
    entries, defects = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            name, labels = parse_line(raw)
        except _Malformed as problem:
            subject = problem.name or raw.strip()
            defects.append(Defect(source, number, subject, problem.kind, problem.reason))
            continue
        entries.append(Entry(split, number, name, labels))
    return entries, defects


def read_split_file(dataset_dir: Path, split: str) -> tuple[list[Entry], list[Defect]]:
    path = dataset_dir / f"{split}.txt"
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: split file not found (a dataset needs train.txt, val.txt "
                        "and test.txt beside images/)") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 text") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read: {error.strerror}") from None
    return parse_split_text(text, split, str(path))


def inspect_image(images_dir: Path, name: str, max_pixels: int) -> ImageInfo | tuple[str, str]:
    """Check one image; returns its info, or (kind, reason) of the defect."""
    path = images_dir / name
    try:
        resolved = path.resolve()
        if not resolved.is_relative_to(images_dir.resolve()):
            return "unsafe_name", "resolves outside images/ (symbolic link?)"
        if not path.exists():
            return "missing_image", f"image not found: {path}"
        if not path.is_file():
            return "unreadable", f"not a regular file: {path}"
        data = path.read_bytes()
    except OSError as error:
        return "unreadable", f"cannot be read: {error.strerror or error}"
    if not data:
        return "empty_file", "empty file (0 bytes)"
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

    unique_names = sorted({e.name for split in SPLITS for e in entries[split]})
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = dict(zip(unique_names,
                           pool.map(lambda n: inspect_image(images_dir, n, max_pixels), unique_names)))

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
        counts = Counter(d.kind for d in defects)
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        listing = "\n".join(f"  {d}" for d in defects)
        raise UserError(f"dataset {root} has {len(defects)} defect(s) ({summary}):\n{listing}\n"
                        "Fix them, or set prepare.on_defect: skip to drop these lines.")
    if not splits["train"]:
        raise UserError(f"{sources['train']}: no usable training image")
    if not classes:
        raise UserError(f"{sources['train']}: no labels at all; a classifier needs classes")
    return PreparedDataset(str(dataset_dir), classes, splits, defects)


def load_prepared(directory: str | Path) -> PreparedDataset:
    """The prepare stage's output, as later stages read it."""
    path = Path(directory) / "dataset.json"
    try:
        return PreparedDataset.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UserError(f"{path} not found: run the prepare stage first (dvc repro prepare)") from None


def _rate(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 6) if denominator else 0.0


def dataset_report(dataset: PreparedDataset) -> dict:
    """Statistics for metrics/data_report.json (numbers, so ``dvc metrics`` can diff them)."""
    report: dict = {"num_classes": len(dataset.classes), "splits": {}, "class_frequency": {}}
    all_records = [r for rs in dataset.splits.values() for r in rs]
    for split, records in dataset.splits.items():
        counts = [len(r.labels) for r in records]
        report["splits"][split] = {
            "images": len(records),
            "labels_per_image_mean": _rate(sum(counts), len(records)),
            "labels_per_image_max": max(counts, default=0),
            "no_label_rate": _rate(sum(c == 0 for c in counts), len(records)),
            "multi_label_rate": _rate(sum(c > 1 for c in counts), len(records)),
        }
    for name in dataset.classes:
        report["class_frequency"][name] = {
            split: sum(name in r.labels for r in records) for split, records in dataset.splits.items()
        }
    if all_records:
        report["image_size"] = {
            "height_min": min(r.height for r in all_records),
            "height_max": max(r.height for r in all_records),
            "width_min": min(r.width for r in all_records),
            "width_max": max(r.width for r in all_records),
            "aspect_ratio_min": round(min(r.width / r.height for r in all_records), 4),
            "aspect_ratio_max": round(max(r.width / r.height for r in all_records), 4),
        }
    kinds = Counter(d.kind for d in dataset.defects)
    report["defects"] = {"skipped_lines": len(dataset.defects), "by_reason": dict(sorted(kinds.items()))}
    report["classes_without_positive"] = {
        split: [c for c in dataset.classes if report["class_frequency"][c][split] == 0]
        for split in ("val", "test")
    }
    report["fingerprint"] = dataset.fingerprint()
    return report


def format_summary(dataset: PreparedDataset, report: dict) -> str:
    """A readable table of the report for the terminal."""
    lines = [f"dataset {dataset.dataset_dir}: {len(dataset.classes)} classes, "
             f"fingerprint {report['fingerprint'][:12]}"]
    lines.append(f"{'split':<8}{'images':>8}{'labels/img':>12}{'no-label':>10}{'multi':>8}")
    for split, stats in report["splits"].items():
        lines.append(f"{split:<8}{stats['images']:>8}{stats['labels_per_image_mean']:>12.2f}"
                     f"{stats['no_label_rate']:>10.1%}{stats['multi_label_rate']:>8.1%}")
    width = max([len(c) for c in dataset.classes] + [5])
    lines.append(f"{'class':<{width}}" + "".join(f"{s:>8}" for s in SPLITS))
    for name, freq in report["class_frequency"].items():
        lines.append(f"{name:<{width}}" + "".join(f"{freq[s]:>8}" for s in SPLITS))
    size = report.get("image_size")
    if size:
        lines.append(f"image height {size['height_min']}..{size['height_max']}, width "
                     f"{size['width_min']}..{size['width_max']}, aspect (w/h) "
                     f"{size['aspect_ratio_min']}..{size['aspect_ratio_max']}")
    for split, missing in report["classes_without_positive"].items():
        if missing:
            lines.append(f"warning: no positive in {split} for: {', '.join(missing)}")
    if dataset.defects:
        lines.append(f"skipped {len(dataset.defects)} defective line(s) (prepare.on_defect: skip):")
        lines += [f"  {d}" for d in dataset.defects]
    return "\n".join(lines)
