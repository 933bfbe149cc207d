"""Dataset parsing and validation: one test per defect kind, vocabulary, no-label forms."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from stages.common.core.errors import UserError
from stages.common.data.dataset import PreparedDataset
from stages.common.data.dataset_statistics import dataset_report
from stages.common.data.dataset_validation import validate_dataset
from stages.common.data.split_files import parse_split_lines, split_lines

REPO = Path(__file__).resolve().parents[2]


def _png(seed: int, height: int = 12, width: int = 16) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def make_dataset(root: Path, splits: dict, images: dict | None = None) -> Path:
    """splits: split -> text of its file; images: name -> bytes (default: a distinct PNG per
    name mentioned in the split files)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    if images is None:
        names = set()
        for text in splits.values():
            for line in text.splitlines():
                if line.strip():
                    names.add(line.split(",")[0].strip())
        images = {name: _png(i) for i, name in enumerate(sorted(names))}
    for name, data in images.items():
        path = root / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for split in ("train", "val", "test"):
        raw = splits.get(split, "")
        (root / f"{split}.txt").write_bytes(raw.encode("utf-8") if isinstance(raw, str) else raw)
    return root


def defects_of(root: Path):
    with pytest.raises(UserError) as caught:
        validate_dataset(root, max_pixels=10_000, on_defect="fail", workers=2)
    return str(caught.value)


def parse_split_text(text: str, split: str, source: str):
    """A split file's text parsed as read_split_file parses its bytes."""
    return parse_split_lines(split_lines(text.encode("utf-8")), split, source)


GOOD = {"train": "a.png,cat\nb.png,dog|cat\n", "val": "c.png,dog\n", "test": "d.png,\ne.png,cat\n"}


def test_valid_dataset_vocabulary_and_targets(tmp_path):
    root = make_dataset(tmp_path, {"train": "a.png,zebra|ant\nb.png,Bee\n", "val": "c.png,ant\n",
                                   "test": "d.png\ne.png,Bee\n"})
    dataset = validate_dataset(root, max_pixels=10_000)
    assert dataset.classes == ["Bee", "ant", "zebra"]  # code-point order: upper case first
    assert dataset.targets("train") == [[0, 1, 1], [1, 0, 0]]
    assert dataset.targets("test") == [[0, 0, 0], [1, 0, 0]]
    assert dataset.splits["train"][0].height == 12 and dataset.splits["train"][0].width == 16


def test_no_label_forms_and_tolerated_formatting():
    text = "\ufeffa.jpg,\r\n\r\n  b.jpg  \r\n c.jpg , x | y \r\nsub/d.jpg,x\n"
    entries, defects = parse_split_text(text.lstrip("\ufeff"), "train", "train.txt")
    assert defects == []
    assert [(e.name, e.labels, e.line) for e in entries] == [
        ("a.jpg", (), 1), ("b.jpg", (), 3), ("c.jpg", ("x", "y"), 4), ("sub/d.jpg", ("x",), 5)]


def test_bom_and_crlf_files_are_accepted(tmp_path):
    splits = {"train": b"\xef\xbb\xbfa.png,cat\r\nb.png,dog\r\n", "val": b"c.png,dog\r\n",
              "test": b"\r\n\r\nd.png,cat\r\n"}
    images = {n: _png(i) for i, n in enumerate(["a.png", "b.png", "c.png", "d.png"])}
    dataset = validate_dataset(make_dataset(tmp_path, splits, images), max_pixels=10_000)
    assert dataset.classes == ["cat", "dog"]
    assert [r.name for r in dataset.splits["train"]] == ["a.png", "b.png"]


def test_missing_image(tmp_path):
    root = make_dataset(tmp_path, GOOD)
    (root / "images" / "c.png").unlink()
    message = defects_of(root)
    assert "val.txt:1: 'c.png': image not found" in message


def test_empty_file(tmp_path):
    root = make_dataset(tmp_path, GOOD)
    (root / "images" / "b.png").write_bytes(b"")
    assert "train.txt:2: 'b.png': empty file (0 bytes)" in defects_of(root)


def test_corrupt_and_truncated_files(tmp_path):
    root = make_dataset(tmp_path, GOOD)
    (root / "images" / "a.png").write_bytes(b"this is not an image")
    jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    (root / "images" / "d.png").write_bytes(jpeg[: len(jpeg) // 2])
    message = defects_of(root)
    assert "train.txt:1: 'a.png': not an accepted image format (JPEG, PNG, BMP" in message
    assert "test.txt:1: 'd.png': corrupt" in message


def test_unreadable_folder_instead_of_file(tmp_path):
    root = make_dataset(tmp_path, GOOD)
    (root / "images" / "c.png").unlink()
    (root / "images" / "c.png").mkdir()
    assert "val.txt:1: 'c.png': not a regular file" in defects_of(root)


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd", "sub/../../x.png", "C:\\x.png"])
def test_names_escaping_images(tmp_path, name):
    root = make_dataset(tmp_path, {**GOOD, "test": f"{name},cat\n"}, images={
        "a.png": _png(1), "b.png": _png(2), "c.png": _png(3)})
    message = defects_of(root)
    assert f"test.txt:1: {name!r}:" in message and "unsafe_name" in message


def test_symlink_escaping_images(tmp_path):
    root = make_dataset(tmp_path / "ds", GOOD)
    (tmp_path / "secret.png").write_bytes(_png(9))
    (root / "images" / "d.png").unlink()
    os.symlink(tmp_path / "secret.png", root / "images" / "d.png")
    assert "test.txt:1: 'd.png': resolves outside images/" in defects_of(root)


def test_too_large_is_refused_before_decoding(tmp_path):
    root = make_dataset(tmp_path, GOOD)
    (root / "images" / "a.png").write_bytes(_png(5, height=200, width=100))
    message = defects_of(root)
    assert "train.txt:1: 'a.png': 100x200 = 20000 pixels exceeds the limit" in message


@pytest.mark.parametrize("line, reason", [
    ("a.png,cat,dog", "more than one comma"),
    (",cat", "no image name"),
    ("a.png,cat||dog", "empty label"),
    ("a.png,cat|cat", "given twice"),
])
def test_malformed_lines(tmp_path, line, reason):
    root = make_dataset(
        tmp_path,
        {**GOOD, "train": f"b.png,dog\n{line}\n"},
        images={n: _png(i) for i, n in enumerate(["a.png", "b.png", "c.png", "d.png"])},
    )
    message = defects_of(root)
    assert "train.txt:2:" in message and reason in message


def test_same_image_twice_in_a_split(tmp_path):
    root = make_dataset(tmp_path, {**GOOD, "train": "a.png,cat\nb.png,dog\na.png,dog\n"})
    assert "train.txt:3: 'a.png': same image already listed in train.txt line 1" in defects_of(root)


def test_same_name_in_two_splits(tmp_path):
    root = make_dataset(tmp_path, {**GOOD, "test": "a.png,cat\n"})
    message = defects_of(root)
    assert "test.txt:1: 'a.png': same image already listed in train.txt line 1" in message
    assert "duplicate_across_splits" in message


def test_same_bytes_in_two_splits_and_in_one_split(tmp_path):
    images = {"a.png": _png(1), "b.png": _png(2), "c.png": _png(1), "d.png": _png(3),
              "e.png": _png(2)}
    root = make_dataset(
        tmp_path,
        {"train": "a.png,cat\nb.png,dog\ne.png,dog\n", "val": "c.png,cat\n", "test": "d.png\n"},
        images,
    )
    message = defects_of(root)
    assert "val.txt:1: 'c.png': same bytes as train.txt line 1 ('a.png')" in message
    assert "train.txt:3: 'e.png': same bytes as train.txt line 2 ('b.png')" in message


def test_label_not_in_train(tmp_path):
    root = make_dataset(tmp_path, {**GOOD, "val": "c.png,bird\n"})
    assert "val.txt:1: 'c.png': label 'bird' never occurs in train.txt" in defects_of(root)


def test_every_label_of_a_line_is_checked_against_train(tmp_path):
    """The unknown label is not the first of its line: still a defect, named."""
    train_labels = GOOD["train"]
    known = sorted({label for line in train_labels.splitlines() if "," in line
                    for label in line.split(",", 1)[1].split("|") if label})[0]
    root = make_dataset(tmp_path, {**GOOD, "val": f"c.png,{known}|bird\n"})
    assert "val.txt:1: 'c.png': label 'bird' never occurs in train.txt" in defects_of(root)


def test_all_defects_reported_in_one_run_and_skip_mode_counts_them(tmp_path):
    root = make_dataset(
        tmp_path,
        {
            "train": "a.png,cat\nb.png,dog\nmissing.png,cat\nbad line,,\n",
            "val": "c.png,dog\na.png,cat\n",
            "test": "d.png,cat\n",
        },
        images={n: _png(i) for i, n in enumerate(["a.png", "b.png", "c.png", "d.png"])},
    )
    message = defects_of(root)
    assert "3 defect(s)" in message
    dataset = validate_dataset(root, max_pixels=10_000, on_defect="skip")
    assert [r.name for r in dataset.splits["train"]] == ["a.png", "b.png"]
    assert [r.name for r in dataset.splits["val"]] == ["c.png"]
    report = dataset_report(dataset)
    assert report["defects"] == {"skipped_lines": 3, "by_reason": {
        "duplicate_across_splits": 1, "malformed_line": 1, "missing_image": 1}}


def test_missing_split_file_and_images_folder(tmp_path):
    root = make_dataset(tmp_path, GOOD)
    (root / "val.txt").unlink()
    with pytest.raises(UserError, match="val.txt: split file not found"):
        validate_dataset(root, max_pixels=10_000)
    with pytest.raises(UserError, match="images: folder not found"):
        validate_dataset(tmp_path / "nowhere", max_pixels=10_000)


def test_report_statistics(tmp_path):
    root = make_dataset(tmp_path, GOOD)
    dataset = validate_dataset(root, max_pixels=10_000)
    report = dataset_report(dataset)
    assert report["splits"]["train"] == {"images": 2, "labels_per_image_mean": 1.5,
                                         "labels_per_image_max": 2, "no_label_rate": 0.0,
                                         "multi_label_rate": 0.5}
    assert report["splits"]["test"]["no_label_rate"] == 0.5
    assert report["class_frequency"] == {"cat": {"train": 2, "val": 0, "test": 1},
                                         "dog": {"train": 1, "val": 1, "test": 0}}
    assert report["classes_without_positive"] == {"val": ["cat"], "test": ["dog"]}
    again = PreparedDataset.from_json(json.loads(json.dumps(dataset.to_json())))
    assert again.fingerprint() == dataset.fingerprint() == report["fingerprint"]


def _write_params(path: Path, data_dir: Path, **overrides) -> Path:
    text = (REPO / "params.yaml").read_text()
    text = text.replace("dir: data/demo", f"dir: {data_dir}")
    for old, new in overrides.items():
        text = text.replace(old, new)
    path.write_text(text)
    return path


@pytest.mark.stage_process
def test_prepare_stage_lists_every_defect_without_traceback(tmp_path):
    root = make_dataset(
        tmp_path / "ds",
        {
            "train": "a.png,cat\nb.png,dog\ngone.png,cat\n",
            "val": "c.png,dog\n../x.png,cat\n",
            "test": "d.png,cat|cat\n",
        },
    )
    (root / "images" / "gone.png").unlink()
    params = _write_params(tmp_path / "params.yaml", root)
    result = subprocess.run(
        [sys.executable, "-m", "stages.prepare", "--params", str(params),
         "--out", str(tmp_path / "prepared"), "--report", str(tmp_path / "report.json")],
        capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for expected in ["train.txt:3: 'gone.png'", "val.txt:2: '../x.png'", "test.txt:1:"]:
        assert expected in result.stderr
    assert not (tmp_path / "prepared").exists()


@pytest.mark.stage_process
def test_prepare_stage_checks_num_classes(tmp_path):
    root = make_dataset(tmp_path / "ds", GOOD)
    params = _write_params(
        tmp_path / "params.yaml", root, **{"num_classes: null": "num_classes: 3"}
    )
    result = subprocess.run(
        [sys.executable, "-m", "stages.prepare", "--params", str(params),
         "--out", str(tmp_path / "prepared"), "--report", str(tmp_path / "report.json")],
        capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "num_classes is 3 but the dataset has 2 classes" in result.stderr


@pytest.mark.stage_process
def test_prepare_stage_writes_vocabulary_vectors_and_report(tmp_path):
    root = make_dataset(tmp_path / "ds", GOOD)
    params = _write_params(tmp_path / "params.yaml", root)
    result = subprocess.run(
        [sys.executable, "-m", "stages.prepare", "--params", str(params),
         "--out", str(tmp_path / "prepared"), "--report", str(tmp_path / "report.json")],
        capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    prepared = tmp_path / "prepared"
    assert (prepared / "labels.txt").read_text() == "cat\ndog\n"
    assert (prepared / "train.csv").read_text().splitlines() == [
        "name,cat,dog", "a.png,1,0", "b.png,1,1"]
    assert (prepared / "test.csv").read_text().splitlines() == ["name,cat,dog", "d.png,0,0",
                                                                "e.png,1,0"]
    assert json.loads((tmp_path / "report.json").read_text())["num_classes"] == 2
    assert "split     images" in result.stdout


def _prepare_stage(tmp_path, root, **overrides):
    params = _write_params(tmp_path / "params.yaml", root, **overrides)
    return subprocess.run(
        [sys.executable, "-m", "stages.prepare", "--params", str(params),
         "--out", str(tmp_path / "prepared"), "--report", str(tmp_path / "report.json")],
        capture_output=True, text=True, cwd=tmp_path)


def _hostile_dataset(tmp_path):
    root = make_dataset(tmp_path / "ds", {}, images={n: _png(i) for i, n in enumerate(
        ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "g.png"])})
    os.symlink("loop2.png", root / "images" / "loop1.png")
    os.symlink("loop1.png", root / "images" / "loop2.png")
    train = (b"a.png,cat\n"
             b"loop1.png,cat\n"             # 2: symlink loop
             b"b.png,dog\n"
             b"nul\x00.png,cat\n"           # 4: NUL in the name
             b"c.png,d\xffog\n"             # 5: not UTF-8
             b"d.png,cat\xe2\x80\xa8dog\r\n"  # 6: U+2028 inside a label (not a line end)
             b"e.png,cat\x0cdog\r"          # 7: form feed, then a bare CR ends the line
             b"gone.png,dog\n")             # 8: a later defect, still reported
    (root / "train.txt").write_bytes(train)
    (root / "val.txt").write_text("f.png,dog\n")
    (root / "test.txt").write_text("missing.png,cat\ng.png,cat\n")
    return root


def test_hostile_lines_and_files_are_each_one_defect_and_the_rest_still_listed(tmp_path):
    """A symlink loop, a NUL byte, a non-UTF-8 byte and line separators other than \\n, \\r\\n
    and \\r: each is one line's defect, reported with the right line number among the others."""
    root = _hostile_dataset(tmp_path)
    message = defects_of(root)
    assert "train.txt:2: 'loop1.png': symbolic link loop" in message
    assert "train.txt:4: 'nul\\x00.png': control character U+0000 in the image name" in message
    assert "train.txt:5: not valid UTF-8 (byte 0xff at column 8)" in message
    assert "train.txt:6: 'd.png': control character U+2028 in label" in message
    assert "train.txt:7: 'e.png': control character U+000C in label" in message
    assert "train.txt:8: 'gone.png': image not found" in message
    assert "test.txt:1: 'missing.png': image not found" in message
    assert "7 defect(s)" in message
    loop = validate_dataset(root, max_pixels=10_000, on_defect="skip").defects[0]
    assert (loop.line, loop.kind) == (2, "unreadable")
    # skip mode keeps the good lines and reports every dropped one: no label lost unsaid
    dataset = validate_dataset(root, max_pixels=10_000, on_defect="skip")
    assert [r.name for r in dataset.splits["train"]] == ["a.png", "b.png"]
    assert [d.line for d in dataset.defects if d.source.endswith("train.txt")] == [2, 4, 5, 6, 7, 8]


@pytest.mark.stage_process
def test_prepare_stage_lists_hostile_lines_without_traceback(tmp_path):
    result = _prepare_stage(tmp_path, _hostile_dataset(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train.txt:5: not valid UTF-8" in result.stderr


def test_only_newline_carriage_return_and_crlf_end_lines():
    text = "a.png,x\u2029y\nb.png,x\x85\rc.png,x\r\nd.png,x\x0b\x1cz\n"
    entries, defects = parse_split_text(text, "train", "train.txt")
    assert [(e.name, e.line) for e in entries] == [("c.png", 3)]
    assert [(d.line, d.reason[:30]) for d in defects] == [
        (1, "control character U+2029 in la"), (2, "control character U+0085 in la"),
        (4, "control character U+000B in la")]


@pytest.mark.parametrize("invisible", ["\u200b", "\u2060", "\ufeff", "\u00a0", "\u200e",
                                       "\u00ad", "\U000e0041"])
def test_invisible_characters_in_a_label_are_defects_named_by_code_point(invisible):
    """A zero-width, format or no-break character makes a class that looks like ``cat``."""
    text = f"a.png,cat\nb.png,ca{invisible}t\nc.png,cat{invisible}|dog\n"
    entries, defects = parse_split_text(text, "train", "train.txt")
    assert [e.name for e in entries] == ["a.png"]
    code = f"U+{ord(invisible):04X}"
    assert [(d.line, d.reason.split(" (")[0]) for d in defects] == [
        (2, f"invisible character {code}"), (3, f"invisible character {code}")]


def test_labels_differing_only_by_unicode_normalisation_are_one_class(tmp_path):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    root = make_dataset(tmp_path, {"train": f"a.png,{composed}\nb.png,{decomposed}|dog\n",
                                   "val": f"c.png,{decomposed}\n", "test": f"d.png,{composed}\n"})
    dataset = validate_dataset(root, max_pixels=10_000)
    assert dataset.classes == [composed, "dog"]
    assert dataset.targets("train") == [[1, 0], [1, 1]]
    entries, defects = parse_split_text(f"a.png,{composed}|{decomposed}\n", "train", "t.txt")
    assert "given twice" in defects[0].reason


def test_label_length_is_bounded_and_curve_file_names_are_safe(tmp_path):
    from stages.common.data.split_files import MAX_LABEL_BYTES
    from stages.common.evaluation.int8_evaluation import CURVE_FILE, curve_file_name

    longest = "é" * (MAX_LABEL_BYTES // 2)  # 2 bytes each: exactly the limit
    too_long = "x" * (MAX_LABEL_BYTES + 1)
    root = make_dataset(tmp_path, {**GOOD, "train": f"a.png,{longest}\nb.png,{too_long}\n"})
    message = defects_of(root)
    assert (
        f"train.txt:2: 'b.png': label '{'x' * 40}'... is {MAX_LABEL_BYTES + 1} bytes long"
        in message
    )
    assert "train.txt:1:" not in message
    for index, label in enumerate([longest, too_long, "a/b\\c:d", "..", "猫"]):
        name = curve_file_name(index, label)
        assert CURVE_FILE.fullmatch(name) and "/" not in name and len(name.encode()) <= 80
        (tmp_path / name).write_text("ok")  # a valid file name on this file system


UNEVALUABLE = [
    ("val", "", "val.txt: no usable image (it has no image line); the pipeline needs images to "
                "tune the thresholds on"),
    ("test", "\n\n", "test.txt: no usable image (it has no image line); the pipeline needs images "
                   "to evaluate the model on"),
    ("val", "c.png,\n", "val.txt: none of its 1 image(s) has a label"),
    ("test", "d.png\n", "test.txt: none of its 1 image(s) has a label; macro-F1 needs at least "
                     "one positive to evaluate the model on"),
]


def _five_images(tmp_path, splits):
    return make_dataset(tmp_path / "ds", {**GOOD, **splits},
                        images={n: _png(i) for i, n in enumerate(["a.png", "b.png", "c.png",
                                                                  "d.png", "e.png"])})


@pytest.mark.parametrize("split, text, expected", UNEVALUABLE)
def test_a_split_that_cannot_be_evaluated_is_an_error(tmp_path, split, text, expected):
    with pytest.raises(UserError, match=re.escape(expected)):
        validate_dataset(_five_images(tmp_path, {split: text}), max_pixels=10_000)


@pytest.mark.stage_process
@pytest.mark.parametrize("split, text, expected", UNEVALUABLE)
def test_prepare_stage_stops_on_a_split_it_cannot_evaluate(tmp_path, split, text, expected):
    result = _prepare_stage(tmp_path, _five_images(tmp_path, {split: text}))
    assert result.returncode == 2 and "Traceback" not in result.stderr and expected in result.stderr


def test_a_split_emptied_by_skipped_defects_is_an_error(tmp_path):
    root = make_dataset(
        tmp_path,
        {**GOOD, "val": "gone.png,dog\n"},
        images={n: _png(i) for i, n in enumerate(["a.png", "b.png", "d.png", "e.png"])},
    )
    with pytest.raises(
        UserError, match=r"val.txt: no usable image \(all its 1 line\(s\) were dropped"
    ):
        validate_dataset(root, max_pixels=10_000, on_defect="skip")


EMPTY_TRAIN = [
    ("", "train.txt: no image line at all; the model needs training images (one line per "
         "image: name.jpg,label1|label2)"),
    ("gone.png,cat\n", "train.txt: no usable training image; every line has a defect, 1 defect(s)"),
    ("a.png,cat||dog\nb.png,,\n", "train.txt: no usable training image; every line has a "
                                   "defect, 2 defect(s) (2 malformed_line)"),
    ("a.png\nb.png,\n", "train.txt: no usable training image has a label; a classifier needs "
                        "classes (name.jpg,label1|label2)"),
]


@pytest.mark.parametrize("train, expected", EMPTY_TRAIN)
def test_an_empty_train_split_names_the_real_cause(tmp_path, train, expected):
    with pytest.raises(UserError) as caught:
        validate_dataset(_five_images(tmp_path, {"train": train}), max_pixels=10_000)
    assert expected in str(caught.value)
    assert "never occurs in train.txt" not in str(caught.value)


@pytest.mark.stage_process
@pytest.mark.parametrize("train, expected", EMPTY_TRAIN)
def test_prepare_stage_stops_on_an_empty_train_split(tmp_path, train, expected):
    result = _prepare_stage(tmp_path, _five_images(tmp_path, {"train": train}))
    assert result.returncode == 2 and "Traceback" not in result.stderr and expected in result.stderr


def test_each_defect_has_its_kind_and_the_listing_its_exact_form(tmp_path):
    """Kinds are what skip mode counts by, and the listing is what a user reads: both exact.
    A line without an image name is named by its own text."""
    root = make_dataset(tmp_path, {"train": "a.png,cat\nb.png,dog\n,cat\na.png,dog\ne.png,dog\n",
                                   "val": "c.png,dog\nb.png,cat\n", "test": "d.png,cat\n"},
                        images={n: _png(i) for i, n in enumerate(["a.png", "b.png", "c.png",
                                                                  "d.png", "e.png"])})
    dataset = validate_dataset(root, max_pixels=10_000, on_defect="skip")
    assert [(Path(d.source).name, d.line, d.name, d.kind) for d in dataset.defects] == [
        ("train.txt", 3, ",cat", "malformed_line"),
        ("train.txt", 4, "a.png", "duplicate_in_split"),
        ("val.txt", 2, "b.png", "duplicate_across_splits")]
    assert [r.name for r in dataset.splits["train"]] == ["a.png", "b.png", "e.png"]
    message = defects_of(root)
    train, val = root / "train.txt", root / "val.txt"
    assert message == (
        f"dataset {root} has 3 defect(s) (1 duplicate_across_splits, 1 duplicate_in_split, "
        "1 malformed_line):\n"
        f"  {train}:3: ',cat': no image name before the comma\n"
        f"  {train}:4: 'a.png': same image already listed in train.txt line 1\n"
        f"  {val}:2: 'b.png': same image already listed in train.txt line 2\n"
        "Fix them, or set prepare.on_defect: skip to drop these lines.")


def test_every_kind_of_defect_with_its_exact_kind_and_reason(tmp_path, monkeypatch):
    """One dataset with one line of each defect the image checks find, each followed by a good
    line in the same split (a defect must not end the split's reading), in skip mode: the kind
    (what skip mode counts by) and the reason (what the user reads) of each, exactly."""
    import hashlib

    from stages.common.data import dataset_validation

    images = {n: _png(i, height=4, width=4) for i, n in enumerate(
        ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "g.png", "h.png", "i.png",
         "opencv.png", "boom.png", "denied.png", "looping.png"])}
    images["empty.png"] = b""
    images["text.png"] = b"plain text"
    jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    images["cut.jpg"] = jpeg[:len(jpeg) // 2]
    images["big.png"] = _png(20, height=10, width=11)  # 110 pixels, over the limit of 109
    images["edge.png"] = _png(21, height=1, width=109)  # exactly the limit
    images["twin.png"] = images["a.png"]
    images["twin2.png"] = images["g.png"]
    root = make_dataset(tmp_path / "ds", {
        "train": "a.png,cat\nb\x07ad.png,cat\nb.png,dog\n/abs.png,cat\nc.png,cat\n"
                 "folder.png,cat\ne.png,dog\nempty.png,cat\ntext.png,cat\ncut.jpg,cat\n"
                 "big.png,cat\nedge.png,cat\nopencv.png,cat\nboom.png,cat\ndenied.png,cat\n"
                 "looping.png,cat\nf.png,cat\n",
        "val": "twin.png,cat\ng.png,dog\nh.png,dog|bird\ntwin2.png,dog\ni.png,cat\n",
        "test": "d.png,cat\n"}, images=images)
    (root / "images" / "folder.png").mkdir()
    real_read, real_decode = Path.read_bytes, dataset_validation.decode_image
    real_inspect = dataset_validation.inspect_image

    def read_bytes(path):
        if path.name == "denied.png":
            raise PermissionError(13, "Permission denied")
        if path.name == "looping.png":
            raise OSError(40, "Too many levels of symbolic links")
        return real_read(path)

    def inspect(images_dir, name, max_pixels):
        if name == "boom.png":
            raise ValueError("boom")
        return real_inspect(images_dir, name, max_pixels)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(dataset_validation, "decode_image",
                        lambda data: None if data == images["opencv.png"] else real_decode(data))
    monkeypatch.setattr(dataset_validation, "inspect_image", inspect)
    dataset = validate_dataset(root, max_pixels=109, on_defect="skip", workers=2)
    found = [(Path(d.source).name, d.line, d.name, d.kind, d.reason) for d in dataset.defects]
    folder = root / "images" / "folder.png"
    assert found == [
        ("train.txt", 2, "b\x07ad.png", "malformed_line",
         "control character U+0007 in the image name"),
        ("train.txt", 4, "/abs.png", "unsafe_name", "absolute path: names are relative to images/"),
        ("train.txt", 6, "folder.png", "unreadable", f"not a regular file: {folder}"),
        ("train.txt", 8, "empty.png", "empty_file", "empty file (0 bytes)"),
        ("train.txt", 9, "text.png", "corrupt", "not an accepted image format (JPEG, PNG, BMP, "
                                                "WebP, TIFF, binary PPM/PGM): it starts with "
                                                "b'plain te'"),
        ("train.txt", 10, "cut.jpg", "corrupt", "corrupt or not an image: Truncated File Read"),
        ("train.txt", 11, "big.png", "too_large", "11x10 = 110 pixels exceeds the limit "
                                                  "prepare.max_image_pixels = 109"),
        ("train.txt", 13, "opencv.png", "corrupt", "OpenCV cannot decode it"),
        ("train.txt", 14, "boom.png", "unreadable", "cannot be checked: ValueError: boom"),
        ("train.txt", 15, "denied.png", "unreadable", "cannot be read: Permission denied"),
        ("train.txt", 16, "looping.png", "unreadable",
         "symbolic link loop: the name never reaches a file"),
        ("val.txt", 1, "twin.png", "duplicate_across_splits",
         "same bytes as train.txt line 1 ('a.png')"),
        ("val.txt", 3, "h.png", "unknown_label",
         "label 'bird' never occurs in train.txt, so it cannot be learnt"),
        ("val.txt", 4, "twin2.png", "duplicate_in_split", "same bytes as val.txt line 2 ('g.png')"),
    ]
    assert dataset.dataset_dir == str(root)
    assert [r.name for r in dataset.splits["train"]] == ["a.png", "b.png", "c.png", "e.png",
                                                        "edge.png", "f.png"]
    assert [r.name for r in dataset.splits["val"]] == ["g.png", "i.png"]
    assert dataset.splits["test"][0].sha256 == hashlib.sha256(images["d.png"]).hexdigest()


def test_the_default_is_to_fail_on_a_defect(tmp_path):
    root = make_dataset(tmp_path, {**GOOD, "val": "c.png,dog\ngone.png,dog\n"},
                        images={n: _png(i) for i, n in enumerate(["a.png", "b.png", "c.png",
                                                                  "d.png", "e.png"])})
    with pytest.raises(UserError, match=r"1 defect\(s\) \(1 missing_image\)"):
        validate_dataset(root, max_pixels=10_000)


def test_a_link_into_the_projects_dvc_cache_is_an_image(tmp_path, monkeypatch):
    """dvc add with cache.type: symlink makes every image such a link; any other link out of
    images/ is refused."""
    from stages.common.data import dataset_validation

    root = make_dataset(tmp_path / "ds", GOOD)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ab12").write_bytes(_png(9))
    (tmp_path / "elsewhere.png").write_bytes(_png(10))
    (root / "images" / "e.png").unlink()
    os.symlink(cache / "ab12", root / "images" / "e.png")
    (root / "images" / "d.png").unlink()
    os.symlink(tmp_path / "elsewhere.png", root / "images" / "d.png")
    asked = []

    def cache_of(start):
        asked.append(start)
        return cache.resolve() if start == (root / "images").resolve() else None

    monkeypatch.setattr(dataset_validation, "dvc_cache_dir", cache_of)
    dataset = validate_dataset(root, max_pixels=10_000, on_defect="skip")
    assert [r.name for r in dataset.splits["test"]] == ["e.png"]
    assert [(d.name, d.kind, d.reason) for d in dataset.defects] == [
        ("d.png", "unsafe_name", "resolves outside images/ (a symbolic link that points neither "
                                 "inside images/ nor into the project's DVC cache)")]
    assert asked and all(start == (root / "images").resolve() for start in asked)


def test_missing_and_unreadable_split_files_and_folder_are_named(tmp_path):
    with pytest.raises(UserError) as caught:
        validate_dataset(tmp_path / "nothing", max_pixels=10)
    assert str(caught.value) == (f"{tmp_path / 'nothing' / 'images'}: folder not found (data.dir "
                                 f"= {tmp_path / 'nothing'} must contain images/ and the three "
                                 "split files)")
    root = make_dataset(tmp_path / "ds", GOOD)
    (root / "val.txt").unlink()
    with pytest.raises(UserError) as caught:
        validate_dataset(root, max_pixels=10_000)
    assert str(caught.value) == (f"{root / 'val.txt'}: split file not found (a dataset needs "
                                 "train.txt, val.txt and test.txt beside images/)")
    (root / "val.txt").mkdir()
    with pytest.raises(UserError) as caught:
        validate_dataset(root, max_pixels=10_000)
    assert str(caught.value) == f"{root / 'val.txt'}: cannot be read: Is a directory"


@pytest.mark.parametrize("name, kind, reason", [
    ("a\\b.png", "unsafe_name", "backslash in name: use '/' between folders"),
    ("C:x.png", "unsafe_name", "absolute path: names are relative to images/"),
    ("sub/../x.png", "unsafe_name", "name escapes images/ ('..' is not allowed)"),
    ("..", "unsafe_name", "name escapes images/ ('..' is not allowed)"),
    ("sub//x.png", "malformed_line", "empty or '.' folder component in name"),
    ("./x.png", "malformed_line", "empty or '.' folder component in name"),
    ("sub/x.png/", "malformed_line", "empty or '.' folder component in name"),
])
def test_each_unsafe_or_malformed_name_is_its_own_kind(name, kind, reason):
    from stages.common.data.split_files import _Malformed, parse_line

    with pytest.raises(_Malformed) as caught:
        parse_line(f"{name},cat")
    assert (caught.value.kind, caught.value.reason, caught.value.name) == (kind, reason, name)


def test_only_spaces_and_tabs_are_trimmed_around_a_name():
    from stages.common.data.split_files import parse_line

    assert parse_line(" \ta.png\t ,cat") == ("a.png", ("cat",))
    assert parse_line("sub.d/a..b.png,cat") == ("sub.d/a..b.png", ("cat",))
    # an em space is no space to trim: the name keeps it (and then names no file)
    assert parse_line("a.png\u2003,cat") == ("a.png\u2003", ("cat",))


def test_the_last_line_needs_no_line_end_and_an_empty_file_has_no_lines():
    assert split_lines(b"a\nb") == [b"a", b"b"]
    assert split_lines(b"a\nb\n") == [b"a", b"b"]
    assert split_lines(b"a\n\n") == [b"a", b""]
    assert split_lines(b"") == []


def test_line_defects_are_named_by_what_can_be_read_of_them():
    """A line that is not UTF-8 has no name to give; a line without a name is named by its own
    text, trimmed of spaces and tabs only; a line of other blank characters is no blank line."""
    entries, defects = parse_split_lines([b"\xffa.png,cat", ",cat\u2003".encode(), "\u2003"
                                          .encode(), b" \t "], "train", "train.txt")
    assert [(d.line, d.name, d.kind) for d in defects] == [(1, "", "malformed_line"),
                                                          (2, ",cat\u2003", "malformed_line")]
    assert [(e.line, e.name) for e in entries] == [(3, "\u2003")]


@pytest.mark.parametrize("line, reason", [
    ("a.png,cat,dog", "more than one comma (labels are separated by '|')"),
    ("a.png,cat||dog", "empty label (check the '|' separators)"),
    ("a.png,cat|cat", "label 'cat' given twice"),
    ("a.png,c\u200bat", "invisible character U+200B (ZERO WIDTH SPACE) in label 'c\\u200bat'"),
    ("a.png," + "x" * 129, f"label '{'x' * 40}'... is 129 bytes long in UTF-8; at most 128 "
                           "are allowed"),
])
def test_each_bad_label_is_a_malformed_line_of_its_image(line, reason):
    from stages.common.data.split_files import _Malformed, parse_line

    with pytest.raises(_Malformed) as caught:
        parse_line(line)
    assert (caught.value.kind, caught.value.reason) == ("malformed_line", reason)
    assert caught.value.name == ("" if line.count(",") > 1 else "a.png")
