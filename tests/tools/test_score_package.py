"""tools.score_package: the package's decisions on a labelled split give the evaluate stage's
test score; two packages compare with a paired interval; bad input stops it with file and line."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _score(*args):
    return subprocess.run([sys.executable, "-m", "tools.score_package", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


def test_the_package_scores_what_the_evaluate_stage_measured(workspace):
    root, dataset = workspace
    result = _score(root / "outputs" / "run_001", dataset.dataset_dir, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    evaluation = json.loads((root / "metrics" / "evaluation.json").read_text())
    assert report["images"] == evaluation["images"] == len(dataset.splits["test"])
    assert report["f1_macro"] == pytest.approx(evaluation["f1_macro"], abs=1e-12)
    assert report["f1_micro"] == pytest.approx(evaluation["f1_micro"], abs=1e-12)


def test_a_package_against_itself_differs_by_nothing(workspace):
    root, dataset = workspace
    package = root / "outputs" / "run_001"
    result = _score(package, dataset.dataset_dir, "--against", package, "--resamples", 50)
    assert result.returncode == 0, result.stderr
    assert "difference +0.0000, paired 90 % interval +0.0000 .. +0.0000" in result.stdout


def _dataset_copy(dataset, tmp_path, test_lines):
    copy = tmp_path / "dataset"
    shutil.copytree(dataset.dataset_dir, copy)
    (copy / "test.txt").write_text("\n".join(test_lines) + "\n")
    return copy


def test_an_unknown_label_stops_it_with_its_line(workspace, tmp_path):
    root, dataset = workspace
    lines = (Path(dataset.dataset_dir) / "test.txt").read_text().splitlines()
    name = lines[1].split(",")[0]
    lines[1] = f"{name},not_a_class"
    result = _score(root / "outputs" / "run_001", _dataset_copy(dataset, tmp_path, lines))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "test.txt:2: label 'not_a_class' is not one of the package's 5 classes" in result.stderr


def test_a_missing_image_stops_it_with_its_line(workspace, tmp_path):
    root, dataset = workspace
    lines = (Path(dataset.dataset_dir) / "test.txt").read_text().splitlines()
    lines.insert(2, "gone.png")
    result = _score(root / "outputs" / "run_001", _dataset_copy(dataset, tmp_path, lines))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "test.txt:3: gone.png: cannot be read" in result.stderr
