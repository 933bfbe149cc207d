"""Data versioning with DVC, in a throw-away git repository with the real prepare stage:
a dataset under `dvc add`, push to a local remote, pull into a fresh clone, two dataset
versions compared with `dvc metrics diff`, and going back in time with `dvc checkout`."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.common.demo_data import write_demo_dataset

REPO = Path(__file__).resolve().parents[1]
GIT_ENV = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def run(*command, cwd):
    env = {**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


def dvc(*args, cwd):
    return run(sys.executable, "-m", "dvc", *args, cwd=cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git + DVC repository holding the stage code, a tracked dataset and the prepare stage."""
    root = tmp_path_factory.mktemp("versioned") / "project"
    shutil.copytree(REPO / "stages", root / "stages",
                    ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["dir"] = "data/shapes"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"prepare": stages["prepare"]}}))
    write_demo_dataset(root / "data" / "shapes", {"train": 24, "val": 4, "test": 4}, seed=5)
    run("git", "init", "-q", cwd=root)
    dvc("init", "-q", cwd=root)
    dvc("add", "-q", "data/shapes", cwd=root)
    dvc("repro", "-q", cwd=root)
    remote = root.parent / "remote"
    dvc("remote", "add", "-d", "local", str(remote), cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "dataset v1", cwd=root)
    dvc("push", "-q", cwd=root)
    return root


def test_push_then_pull_into_a_fresh_clone_has_nothing_to_redo(project):
    clone = project.parent / "clone"
    run("git", "clone", "-q", str(project), str(clone), cwd=project.parent)
    assert not (clone / "data" / "shapes").exists()
    dvc("pull", "-q", cwd=clone)
    assert (clone / "data" / "shapes" / "train.txt").read_text() == \
        (project / "data" / "shapes" / "train.txt").read_text()
    assert (clone / "data" / "prepared" / "dataset.json").exists()
    assert "up to date" in dvc("status", cwd=clone)
    assert "didn't change" in dvc("repro", cwd=clone)


def test_two_dataset_versions_diff_and_going_back(project):
    labels = project / "data" / "shapes" / "train.txt"
    v1_text = labels.read_text()
    v1_report = json.loads((project / "metrics" / "data_report.json").read_text())
    lines = v1_text.splitlines()
    name = lines[0].split(",")[0]
    lines[0] = f"{name},circle|cross|ring|square|triangle"  # relabel one image
    labels.write_text("\n".join(lines) + "\n")
    assert "data/shapes" in dvc("status", cwd=project)  # the changed dataset reruns prepare
    dvc("add", "-q", "data/shapes", cwd=project)
    dvc("repro", "-q", cwd=project)
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-qm", "dataset v2: one image relabelled", cwd=project)
    v2_report = json.loads((project / "metrics" / "data_report.json").read_text())
    assert v2_report["fingerprint"] != v1_report["fingerprint"]

    diff = json.loads(dvc("metrics", "diff", "HEAD~1", "--json", cwd=project))
    changed = diff["metrics/data_report.json"]
    assert changed["splits.train.labels_per_image_mean"]["old"] == \
        v1_report["splits"]["train"]["labels_per_image_mean"]
    assert changed["splits.train.labels_per_image_mean"]["new"] == \
        v2_report["splits"]["train"]["labels_per_image_mean"]

    run("git", "checkout", "-q", "HEAD~1", cwd=project)
    dvc("checkout", "-q", cwd=project)
    assert labels.read_text() == v1_text  # the old dataset is back
    restored = json.loads((project / "data" / "prepared" / "dataset.json").read_text())
    assert restored["fingerprint"] == v1_report["fingerprint"]  # and what was made from it
    assert "up to date" in dvc("status", cwd=project)
    run("git", "checkout", "-q", "-", cwd=project)
    dvc("checkout", "-q", cwd=project)
