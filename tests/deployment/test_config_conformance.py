"""One verdict on every output folder: predict (Python) and the C app read the five-file folder
under the same rules (docs/output_folder_rules.md). Every case of the conformance corpus
(tests/helpers/config_corpus.py, written once per session) goes through both readers; each must
give the case's verdict, and where both accept, the same labels for every image."""
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from helpers.c_app import C_DIR, compiler, make, sanitizers_work

from stages.common.core.errors import UserError
from stages.common.core.label_text import forbidden_ranges
from stages.common.deployment.predictor import Predictor

FIVE = ("inference_config.json", "labels.txt", "model_qat_int8.tflite")


def _case_names(corpus: Path) -> list[str]:
    return sorted(path.name for path in corpus.iterdir() if (path / "case.json").is_file())


def _images(corpus: Path) -> list[Path]:
    return sorted((corpus / "base" / "images").glob("*.ppm"))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    compiler()
    out = tmp_path_factory.mktemp("c_app")
    make("all", out)
    return out / "classify"


@pytest.fixture(scope="module")
def sanitized_app(tmp_path_factory):
    """The C app under AddressSanitizer and UBSan, where this compiler builds it: hostile input
    is where a parser's memory errors hide."""
    out = tmp_path_factory.mktemp("c_app_sanitized")
    if not sanitizers_work(out):
        return None
    make("sanitized", out)
    return out / "classify-sanitized"


def _folder(corpus: Path, case: str, root: Path) -> Path:
    """base/'s three read files, with the case's files and special entries put over them."""
    folder = root / case
    folder.mkdir()
    for name in FIVE:
        shutil.copyfile(corpus / "base" / name, folder / name)
    for path in (corpus / case).iterdir():
        if path.name != "case.json":
            shutil.copyfile(path, folder / path.name)
    special = json.loads((corpus / case / "case.json").read_text())
    for name, kind in special.get("special", {}).items():
        (folder / name).unlink()
        if kind == "fifo":
            os.mkfifo(folder / name)
        elif kind == "folder":
            (folder / name).mkdir()
    return folder


def _python_reader(folder: Path, images: list[Path]) -> tuple[str, dict | str]:
    """("accept", {image: ["label (probability)", ...]}) or ("refuse", message); a reader that
    blocks fails."""
    outcome = {}

    def read():
        try:
            predictor = Predictor.load(folder)
            # each label as the C app prints it: its name and its probability to 2 decimals
            outcome["result"] = ("accept", {
                path.name: [f"{label['class']} ({label['probability']:.2f})"
                            for label in predictor.predict_file(path)["labels"]]
                for path in images})
        except UserError as error:
            outcome["result"] = ("refuse", str(error))

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), f"predict blocks on {folder}"
    assert "result" in outcome, f"predict ended in a traceback on {folder}"
    return outcome["result"]


def _c_reader(app: Path, folder: Path, images: list[Path]) -> tuple[str, dict | str]:
    result = subprocess.run([str(app), str(folder), *map(str, images)], capture_output=True,
                            text=True, timeout=60)
    if result.returncode == 2:
        assert result.stdout == "" and "classify: " in result.stderr, result.stderr
        # the app's own message (the runtime logs lines of its own before it)
        return "refuse", next(line for line in result.stderr.splitlines()
                              if line.startswith("classify: "))
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    labels = {}
    for line in result.stdout.splitlines():
        image, _, rest = line.partition(": ")
        labels[Path(image).name] = [] if rest == "(no label)" else \
            rest.split(", ")
    return "accept", labels


def _check_case(corpus: Path, case: str, app: Path, sanitized_app: Path | None,
                root: Path) -> None:
    """AssertionError, naming the case, unless both readers (and the sanitized C app) give
    its verdict: the same labels where they accept, messages naming the folder (and what
    ``both_say`` says) where they refuse."""
    expected = json.loads((corpus / case / "case.json").read_text())
    folder = _folder(corpus, case, root)
    images = _images(corpus)
    python = _python_reader(folder, images)
    c = _c_reader(app, folder, images)
    if sanitized_app is not None:
        sanitized = _c_reader(sanitized_app, folder, images)
        assert sanitized == c and "Sanitizer" not in str(sanitized[1]), sanitized
    assert (python[0], c[0]) == (expected["verdict"],) * 2, (
        f"expected {expected['verdict']} ({expected['why']}), predict says "
        f"{python[0]} ({python[1]}), C says {c[0]} ({c[1]})")
    if expected["verdict"] == "accept":
        assert python[1] == c[1], (python[1], c[1])
    else:  # each reader names the file it refuses, and where one rule alone refuses the
        # case, both say which
        assert str(folder) in python[1] and str(folder) in c[1], (python[1], c[1])
        said = expected.get("both_say", "")
        assert said in python[1] and said in c[1], (said, python[1], c[1])


def test_the_corpus_is_large_and_covers_both_verdicts(config_corpus):
    names = _case_names(config_corpus)
    verdicts = [json.loads((config_corpus / name / "case.json").read_text())["verdict"]
                for name in names]
    assert len(verdicts) >= 30 and set(verdicts) == {"accept", "refuse"}
    assert all(name.startswith(verdict) for name, verdict in zip(names, verdicts))


def test_both_readers_give_each_case_verdict(config_corpus, app, sanitized_app, tmp_path):
    """Every case is run, and every case that fails is listed by name."""
    failed = {}
    for case in _case_names(config_corpus):
        try:
            _check_case(config_corpus, case, app, sanitized_app, tmp_path)
        except AssertionError as error:
            failed[case] = str(error)[:600]
    assert not failed, "\n".join(f"{case}: {why}" for case, why in failed.items())


def test_some_images_get_labels_and_some_do_not(config_corpus, tmp_path):
    """The accepted cases compare decisions that can differ: base's thresholds sit at the median
    image's outputs."""
    _, labels = _python_reader(_folder(config_corpus, "accept_as_packaged", tmp_path),
                               _images(config_corpus))
    assert any(labels.values()) and not all(len(v) == 3 for v in labels.values()), labels


def test_the_c_table_of_forbidden_characters_is_pythons():
    source = (C_DIR / "config_reader.c").read_text()
    block = source.split("FORBIDDEN_IN_LABELS[][2] = {", 1)[1].split("};", 1)[0]
    table = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}",
                                                             block)]
    assert table == forbidden_ranges()
