"""Data versioning with DVC, in a throw-away git repository with the real prepare stage:
a dataset under `dvc add`, push to a local remote, pull into a fresh clone, two dataset
versions compared with `dvc metrics diff`, and going back in time with `dvc checkout`."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.git_dvc import dvc, run

from stages.common.core.yaml_files import read_yaml, write_yaml
from stages.common.data.demo_data import write_demo_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git + DVC repository holding the stage code, a tracked dataset and the prepare stage."""
    root = tmp_path_factory.mktemp("versioned") / "project"
    shutil.copytree(REPO / "stages", root / "stages",
                    ignore=shutil.ignore_patterns("__pycache__"))
    params = read_yaml(REPO / "params.yaml")[0]
    params["data"]["dir"] = "data/shapes"
    write_yaml(root / "params.yaml", params)
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


@pytest.mark.parametrize("cache_type", ["symlink", "hardlink"])
def test_a_dataset_added_with_links_into_the_dvc_cache_is_accepted(tmp_path, cache_type):
    """`dvc add` under cache.type symlink makes every image a link into .dvc/cache: those links
    are the project's own; a link that leaves for anywhere else is still refused."""
    root = tmp_path / "project"
    write_demo_dataset(root / "data" / "shapes", {"train": 12, "val": 4, "test": 4}, seed=5)
    run("git", "init", "-q", cwd=root)
    dvc("init", "-q", cwd=root)
    dvc("config", "cache.type", cache_type, cwd=root)
    dvc("add", "-q", "data/shapes", cwd=root)
    images = sorted((root / "data" / "shapes" / "images").rglob("*.jpg"))
    if cache_type == "symlink":
        assert images and all(path.is_symlink() for path in images)
    else:
        assert images and all(path.stat().st_nlink == 2 for path in images)
    params = read_yaml(REPO / "params.yaml")[0]
    params["data"]["dir"] = "data/shapes"
    write_yaml(root / "params.yaml", params)

    def prepare():
        return subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=root,
                              capture_output=True, text=True)

    result = prepare()
    assert result.returncode == 0, result.stderr
    assert (
        json.loads((root / "metrics" / "data_report.json").read_text())["splits"]["train"]["images"]
        == 12
    )

    (tmp_path / "elsewhere.jpg").write_bytes(images[0].read_bytes())
    victim = images[1]
    victim.unlink()
    victim.symlink_to(tmp_path / "elsewhere.jpg")
    refused = prepare()
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (
        f"'{victim.relative_to(root / 'data' / 'shapes' / 'images')}': resolves outside images/"
        in refused.stderr
    )
