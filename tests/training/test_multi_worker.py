"""train.strategy: multi_worker, proven with two worker processes on this machine running the
training stage itself (one training step on two workers: tests/training/test_devices.py).

Each worker has its own TF_CONFIG (127.0.0.1, ports picked free) and one CPU device. The
cluster runs inside a network namespace with only the loopback interface (``unshare -rn``;
tests/helpers/multi_worker_cluster.py), because TensorFlow's servers listen on every interface.
Every run is bounded in time and its processes are always stopped.
"""
import json
import sys
from pathlib import Path

import pytest
from helpers.multi_worker_cluster import has_private_network, run_cluster

from stages.common.core.params import read_params
from stages.common.core.yaml_files import write_yaml

REPO = Path(__file__).resolve().parents[2]
STAGE_TIMEOUT_S = 240  # measured about 60 s for the tiny teacher on the 2-core CI machine

pytestmark = pytest.mark.skipif(
    not has_private_network(),
    reason="needs a network namespace (unshare -rn) so the workers are reachable on loopback only")


TINY_TEACHER = {"architecture": "efficientnet_b0", "weights": None, "input_size": 32,
                "batch_size": 8, "epochs_head": 1, "epochs_finetune": 1,
                "early_stopping_patience": 50}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A tiny prepared dataset and its shards, in a folder every worker reads (the shared
    filesystem of a cluster): (root, prepared dataset.json text, shards folder)."""
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.demo_data import write_demo_dataset
    from stages.common.data.tfrecord_shards import write_shards

    root = tmp_path_factory.mktemp("cluster")
    write_demo_dataset(root / "demo", {"train": 16, "val": 8, "test": 8}, seed=3)
    dataset = validate_dataset(root / "demo", max_pixels=10**7)
    write_shards(dataset, root / "shared" / "shards", {"teacher": TINY_TEACHER["input_size"]})
    return root, json.dumps(dataset.to_json()), root / "shared" / "shards"


def _working_copy(folder: Path, dataset_json: str, teacher: dict) -> Path:
    """What one machine of the cluster has: params.yaml and the prepared dataset."""
    (folder / "data" / "prepared").mkdir(parents=True)
    (folder / "data" / "prepared" / "dataset.json").write_text(dataset_json)
    params = read_params(REPO / "params.yaml")
    params["teacher"].update(teacher)
    params["train"]["strategy"] = "multi_worker"
    write_yaml(folder / "params.yaml", params)
    (folder / "tmp").mkdir()
    return folder


def _teacher_worker(copy: Path, shards: Path) -> dict:
    return {"argv": [sys.executable, "-m", "stages.train_teacher",
                     "--shards", shards.as_uri()],
            "cwd": str(copy), "env": {"TMPDIR": str(copy / "tmp")}}


STAGE_OUTPUTS = ("models/teacher", "metrics/teacher.json", "dvclive/train_teacher",
                 "models/checkpoints")


def test_only_the_chief_writes_and_the_shards_are_read_by_url(prepared, tmp_path):
    """Two machines, each with its own working copy, read the shards at a file:// URL. The
    chief's copy gets the model, metrics and curves; the other worker's gets nothing, and its
    temporary folder is empty again at the end."""
    root, dataset_json, shards = prepared
    chief = _working_copy(tmp_path / "chief", dataset_json, TINY_TEACHER)
    other = _working_copy(tmp_path / "other", dataset_json, TINY_TEACHER)
    report = run_cluster(tmp_path, [_teacher_worker(chief, shards), _teacher_worker(other, shards)],
                         STAGE_TIMEOUT_S)
    assert not report["timed_out"]
    for worker in report["workers"]:
        assert worker["returncode"] == 0, worker["stderr"][-3000:]
        assert "training on 2 devices" in worker["stdout"]
        assert "train_teacher: val macro-F1" in worker["stdout"]
    for output in STAGE_OUTPUTS[:3]:
        assert (chief / output).exists(), output
    assert json.loads((chief / "models" / "teacher" / "model.json").read_text())["input_size"] == 32
    metrics = json.loads((chief / "metrics" / "teacher.json").read_text())
    assert metrics["phases"]["head"]["epochs_run"] == 1
    assert not (chief / "models" / "checkpoints" / "train_teacher").exists()  # cleared at the end
    assert sorted(path.name for path in other.iterdir()) == ["data", "params.yaml", "tmp"]
    assert [path.name for path in (other / "data").iterdir()] == ["prepared"]
    assert list((other / "tmp").iterdir()) == []  # the worker's outputs were removed
    assert "not the chief" in report["workers"][1]["stdout"]


def test_a_killed_chief_stops_the_other_and_resumes_on_a_shared_filesystem(prepared, tmp_path):
    """Both workers share one working copy (as on a shared filesystem). The chief is killed in
    the fine-tuning phase: the other worker stops within seconds with a message, not a hang.
    Started again on both, the stage reuses the finished head phase and continues fine-tuning
    from its last epoch checkpoint."""
    root, dataset_json, shards = prepared
    schedule = {**TINY_TEACHER, "epochs_head": 1, "epochs_finetune": 4}
    shared = _working_copy(tmp_path / "shared", dataset_json, schedule)
    workers = [_teacher_worker(shared, shards), _teacher_worker(shared, shards)]
    first = run_cluster(tmp_path, workers, STAGE_TIMEOUT_S, kill={
        "worker": 0, "signal": "KILL", "when": {"worker": 0, "line": r"finetune: epoch 2/4"}})
    assert first["killed"] and not first["timed_out"]
    # the surviving worker stops within seconds, in words, as a user error
    survivor = first["workers"][1]
    assert survivor["returncode"] == 2, survivor["stderr"][-3000:]
    assert survivor["ended_after_kill_s"] < 60  # measured about 1 s; TensorFlow's heartbeat ~10 s
    assert "lost contact with another worker" in survivor["stderr"]
    assert "Start the stage again on every machine" in survivor["stderr"]
    assert "Traceback" not in survivor["stderr"]
    checkpoints = shared / "models" / "checkpoints" / "train_teacher"
    assert (checkpoints / "head_done.json").is_file()
    assert not (shared / "models" / "teacher").exists()

    second = run_cluster(tmp_path, workers, STAGE_TIMEOUT_S)
    assert not second["timed_out"]
    for worker in second["workers"]:
        assert worker["returncode"] == 0, worker["stderr"][-3000:]
        output = worker["stdout"]
        assert "phase head already finished in an earlier run, reusing it" in output
        assert "head: epoch 1/1" not in output
        assert "finetune: epoch 1/4" not in output  # continued from the checkpoint
        assert "finetune: epoch 4/4" in output
    metrics = json.loads((shared / "metrics" / "teacher.json").read_text())
    assert metrics["phases"]["finetune"]["epochs_run"] == 4
    assert not checkpoints.exists()
    # the workers' own outputs are gone (a killed process leaves TensorFlow's autograph files)
    assert not [path for path in (shared / "tmp").iterdir() if path.name.startswith("worker_")]
