"""Helper run in fresh processes by test_devices: one training step of the plain student
and of the Distiller; prints the losses and updated weights as JSON.

``mirrored`` (default): the CPU is split into two logical devices before TensorFlow starts,
then the step runs on one device and under the pipeline's ``mirrored`` strategy.
``multi_worker``: one process of a cluster (TF_CONFIG), one CPU device each, under the
pipeline's ``multi_worker`` strategy; every worker prints the same results.
"""
import json
import sys

import stages  # noqa: F401  (Keras 2)

# isort: split
import numpy as np
import tensorflow as tf

MODE = sys.argv[1] if len(sys.argv) > 1 else "mirrored"
if MODE == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from stages.common.models.architectures import build_student  # noqa: E402
from stages.common.models.freezing import set_trainable  # noqa: E402
from stages.common.training.devices import distribution_strategy  # noqa: E402
from stages.common.training.distillation import Distiller  # noqa: E402

keras = tf.keras
SIZE, CLASSES, BATCH = 32, 5, 8


def first_step(strategy, initial, teacher_initial, distill: bool):
    with strategy.scope():
        student = build_student(CLASSES, SIZE, dropout=0.0)  # no per-replica random masks
        student.set_weights(initial)
        set_trainable(student, "head")
        # plain SGD: its update is proportional to the gradient, so a gradient summed over
        # replicas without scaling would show (Adam's first step is nearly scale-free)
        optimizer = keras.optimizers.SGD(learning_rate=0.5)
        if distill:
            teacher = build_student(CLASSES, SIZE, dropout=0.3)
            teacher.set_weights(teacher_initial)
            model = Distiller(student, teacher, alpha=0.7, temperature=2.0)
            model.compile(optimizer=optimizer)
        else:
            model = student
            model.compile(optimizer=optimizer,
                          loss=keras.losses.BinaryCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    targets = (rng.uniform(size=(BATCH, CLASSES)) < 0.4).astype(np.float32)
    inputs = (images, images) if distill else images
    data = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(BATCH)
    history = model.fit(data, epochs=1, verbose=0)
    return {"loss": float(history.history["loss"][0]),
            # the update of the head (SGD: -lr * gradient); the kernel's is tiny at random init
            "bias_change": (student.get_layer("logits").bias.numpy() - initial[-1]).tolist(),
            "kernel_change": (student.get_layer("logits").kernel.numpy() - initial[-2]).tolist(),
            "replicas": strategy.num_replicas_in_sync}


def patient_heartbeats(timeout_ms: int = 120_000) -> None:
    """The coordination service this cluster's strategy would start, with heartbeats allowed two
    minutes instead of TensorFlow's few seconds. This check compares numbers, not failure
    detection, and on a busy 2-core machine (the suite's other process training beside it) a
    worker can miss its heartbeats for longer than that; the strategy keeps a service already
    configured. The stage's own multi-worker runs keep TensorFlow's defaults."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    cluster = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    jobs = [job for job in ("chief", "worker") if job in cluster.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{jobs[0]}/replica:0/task:0",
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(
            name=job, num_tasks=cluster.num_tasks(job)) for job in jobs],
        heartbeat_timeout_in_ms=timeout_ms)


def main():
    if MODE == "mirrored":
        strategies = (("one_device", tf.distribute.get_strategy()),
                      ("mirrored", distribution_strategy("mirrored")))
    else:  # before any other TensorFlow op: collective ops are configured at startup
        patient_heartbeats()
        strategies = (("multi_worker", distribution_strategy("multi_worker")),)
    keras.utils.set_random_seed(0)
    initial = build_student(CLASSES, SIZE, dropout=0.3).get_weights()
    teacher_initial = build_student(CLASSES, SIZE, dropout=0.3).get_weights()
    results = {}
    for distill in (False, True):
        for name, strategy in strategies:
            results[f"{'distill' if distill else 'plain'}/{name}"] = first_step(
                strategy, initial, teacher_initial, distill)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
