"""train.strategy: the mirrored strategy on two logical CPU devices, and two workers under
multi_worker, give the same first step as one device, for the plain student and for the
Distiller (whose loss is scaled per replica)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.multi_worker_cluster import has_private_network, last_json_line, run_cluster

from stages.common.core.errors import UserError
from stages.common.training.devices import distribution_strategy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def first_step_runs():
    """One training step of the student and of the Distiller, on one device and under the
    mirrored strategy on two logical CPUs, from tests/helpers/first_step_on_devices.py in a fresh
    process: {"plain/one_device": {...}, "plain/mirrored": ..., "distill/...": ...}."""
    helper = REPO / "tests" / "helpers" / "first_step_on_devices.py"
    result = subprocess.run([sys.executable, str(helper)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return last_json_line(result.stdout)


def test_mirrored_on_two_cpus_matches_one_device(first_step_runs):
    runs = first_step_runs
    for kind in ("plain", "distill"):
        one, mirrored = runs[f"{kind}/one_device"], runs[f"{kind}/mirrored"]
        assert one["replicas"] == 1 and mirrored["replicas"] == 2
        assert mirrored["loss"] == pytest.approx(one["loss"], rel=1e-5)
        # the update itself: the summed per-replica gradients equal the one-device gradient
        assert np.abs(one["bias_change"]).max() > 1e-3  # a real step was taken
        np.testing.assert_allclose(
            mirrored["bias_change"], one["bias_change"], rtol=1e-4, atol=1e-7
        )
        np.testing.assert_allclose(mirrored["kernel_change"], one["kernel_change"], rtol=1e-4,
                                   atol=1e-6)


@pytest.mark.skipif(
    not has_private_network(),
    reason="needs a network namespace (unshare -rn) so the workers are reachable on loopback only")
def test_one_step_on_two_workers_matches_one_process(tmp_path, first_step_runs):
    """train.strategy: multi_worker, two worker processes on this machine (own TF_CONFIG on
    127.0.0.1, one CPU device each; tests/helpers/multi_worker_cluster.py). One training step of the
    plain student and of the Distiller, global batch 8: on two workers (4 images each) the loss
    and the updated weights are those of one process."""
    helper = [sys.executable, str(REPO / "tests" / "helpers" / "first_step_on_devices.py")]
    report = run_cluster(tmp_path, [{"argv": helper + ["multi_worker"], "cwd": str(REPO)}] * 2,
                         timeout_s=240)
    assert not report["timed_out"]
    for worker in report["workers"]:
        assert worker["returncode"] == 0, worker["stderr"][-3000:]
        runs = last_json_line(worker["stdout"])
        for kind in ("plain", "distill"):
            reference = first_step_runs[f"{kind}/one_device"]
            distributed = runs[f"{kind}/multi_worker"]
            assert distributed["replicas"] == 2
            # tolerance: float32 sums in another order (two partial gradients added)
            assert distributed["loss"] == pytest.approx(reference["loss"], rel=1e-5)
            assert np.abs(reference["bias_change"]).max() > 1e-3  # a real step was taken
            np.testing.assert_allclose(distributed["bias_change"], reference["bias_change"],
                                       rtol=1e-4, atol=1e-7)
            np.testing.assert_allclose(distributed["kernel_change"], reference["kernel_change"],
                                       rtol=1e-4, atol=1e-6)


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="multi_worker needs the TF_CONFIG"):
        distribution_strategy("multi_worker")


def test_mixed_precision_keeps_float32_logits_and_trains_the_distiller():
    import tensorflow as tf

    from stages.common.models.architectures import build_student
    from stages.common.models.freezing import set_trainable
    from stages.common.training.devices import set_precision
    from stages.common.training.distillation import Distiller

    set_precision(True)
    try:
        student, teacher = build_student(3, 32, dropout=0.3), build_student(3, 32, dropout=0.3)
        assert student.get_layer("stem_conv").compute_dtype == "float16"
        assert student.output.dtype == tf.float32  # losses and sigmoid in float32
        set_trainable(student, "head")
        distiller = Distiller(student, teacher, alpha=0.7, temperature=2.0)
        distiller.compile(optimizer=tf.keras.optimizers.AdamW(1e-3))
        assert type(distiller.optimizer).__name__.startswith("LossScaleOptimizer")
        images = np.zeros((4, 32, 32, 3), np.float32)
        history = distiller.fit((images, images), np.ones((4, 3), np.float32), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
    finally:
        set_precision(False)
    assert build_student(3, 32, dropout=0.3).get_layer("stem_conv").compute_dtype == "float32"


@pytest.mark.parametrize("tf_config, problem", [
    ("{not json", "JSONDecodeError"),
    ('{"cluster": {"worker": ["a:1"]}}', "KeyError: 'task'"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "IndexError: 2"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "KeyError: 'chief'"),
])
def test_a_malformed_tf_config_is_refused_in_words(monkeypatch, tf_config, problem):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UserError, match="TF_CONFIG: not a cluster and a task in it") as refused:
        distribution_strategy("multi_worker")
    assert problem in str(refused.value)
