"""One verdict on every output folder: predict (Python) and the C app read the five-file folder
under the same rules (docs/output_folder_rules.md). Every case of the conformance corpus
tests/config_cases/ (written by its make_cases.py) goes through both readers; each must give the
case's verdict, and where both accept, the same labels for every image."""
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from stages.common.core.errors import UserError
from stages.common.core.label_text import forbidden_ranges
from stages.common.deployment.predictor import Predictor
from test_classify_c import C_DIR, _compiler, _make, _sanitizers_work

CASES = Path(__file__).resolve().parent / "config_cases"
BASE = CASES / "base"
FIVE = ("inference_config.json", "labels.txt", "model_qat_int8.tflite")
IMAGES = sorted((BASE / "images").glob("*.ppm"))


def _case_names() -> list[str]:
    return sorted(path.name for path in CASES.iterdir() if (path / "case.json").is_file())


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    _compiler()
    out = tmp_path_factory.mktemp("c_app")
    _make("all", out)
    return out / "classify"


@pytest.fixture(scope="module")
def sanitized_app(tmp_path_factory):
    """The C app under AddressSanitizer and UBSan, where this compiler builds it: hostile input
    is where a parser's memory errors hide."""
    out = tmp_path_factory.mktemp("c_app_sanitized")
    if not _sanitizers_work(out):
        return None
    _make("sanitized", out)
    return out / "classify-sanitized"


def _folder(case: str, root: Path) -> Path:
    """base/'s three read files, with the case's files and special entries put over them."""
    folder = root / case
    folder.mkdir()
    for name in FIVE:
        shutil.copyfile(BASE / name, folder / name)
    for path in (CASES / case).iterdir():
        if path.name != "case.json":
            shutil.copyfile(path, folder / path.name)
    special = json.loads((CASES / case / "case.json").read_text())
    for name, kind in special.get("special", {}).items():
        (folder / name).unlink()
        if kind == "fifo":
            os.mkfifo(folder / name)
        elif kind == "folder":
            (folder / name).mkdir()
    return folder


def _python_reader(folder: Path) -> tuple[str, dict | str]:
    """("accept", {image: labels}) or ("refuse", message); a reader that blocks fails."""
    outcome = {}

    def read():
        try:
            predictor = Predictor.load(folder)
            outcome["result"] = ("accept", {
                path.name: [label["class"] for label in predictor.predict_file(path)["labels"]]
                for path in IMAGES})
        except UserError as error:
            outcome["result"] = ("refuse", str(error))

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), f"predict blocks on {folder}"
    assert "result" in outcome, f"predict ended in a traceback on {folder}"
    return outcome["result"]


def _c_reader(app: Path, folder: Path) -> tuple[str, dict | str]:
    result = subprocess.run([str(app), str(folder), *map(str, IMAGES)], capture_output=True,
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
            [part.rsplit(" (", 1)[0] for part in rest.split(", ")]
    return "accept", labels


def test_the_corpus_is_large_and_covers_both_verdicts():
    verdicts = [json.loads((CASES / name / "case.json").read_text())["verdict"]
                for name in _case_names()]
    assert len(verdicts) >= 30 and set(verdicts) == {"accept", "refuse"}
    assert all(name.startswith(verdict) for name, verdict in zip(_case_names(), verdicts))


@pytest.mark.parametrize("case", _case_names())
def test_both_readers_give_the_case_verdict(app, sanitized_app, tmp_path, case):
    expected = json.loads((CASES / case / "case.json").read_text())
    folder = _folder(case, tmp_path)
    python = _python_reader(folder)
    c = _c_reader(app, folder)
    if sanitized_app is not None:
        sanitized = _c_reader(sanitized_app, folder)
        assert sanitized == c and "Sanitizer" not in str(sanitized[1]), sanitized
    assert (python[0], c[0]) == (expected["verdict"],) * 2, (
        f"{case} ({expected['why']}): expected {expected['verdict']}, predict says "
        f"{python[0]} ({python[1]}), C says {c[0]} ({c[1]})")
    if expected["verdict"] == "accept":
        assert python[1] == c[1], case
    else:  # each reader names the file it refuses, and where one rule alone refuses the
        # case, both say which
        assert str(folder) in python[1] and str(folder) in c[1], (python[1], c[1])
        said = expected.get("both_say", "")
        assert said in python[1] and said in c[1], (said, python[1], c[1])


def test_some_images_get_labels_and_some_do_not(app, tmp_path):
    """The accepted cases compare decisions that can differ: base's thresholds sit at the median
    image's outputs."""
    _, labels = _python_reader(_folder("accept_as_packaged", tmp_path))
    assert any(labels.values()) and not all(len(v) == 3 for v in labels.values()), labels


def test_the_c_table_of_forbidden_characters_is_pythons():
    source = (C_DIR / "config_reader.c").read_text()
    block = source.split("FORBIDDEN_IN_LABELS[][2] = {", 1)[1].split("};", 1)[0]
    table = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}",
                                                             block)]
    assert table == forbidden_ranges()
