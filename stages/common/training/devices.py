"""Where training runs: seeds, the distribution strategy (one device, several, or several
machines), which worker writes, lost workers, and mixed precision."""
from __future__ import annotations

import json
import os
import re

import tensorflow as tf

from stages.common.core import layout
from stages.common.core.errors import UserError

keras = tf.keras


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and ask TensorFlow for deterministic kernels.

    What remains nondeterministic: thread scheduling of inter-op parallelism can change float
    summation order in a few CPU kernels, and results differ across machines, CPU instruction
    sets and TensorFlow versions.
    """
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """TensorFlow's own engine for several devices (param ``train.strategy``).

    ``auto``: MirroredStrategy over the GPUs when there are several, else the default
    (one-device) strategy. ``mirrored``: MirroredStrategy over every local GPU, or over every
    logical CPU device when there is no GPU. ``multi_worker``: MultiWorkerMirroredStrategy over
    the machines of the ``TF_CONFIG`` environment variable. Batch sizes are global: each of N
    replicas gets batch_size / N examples of every batch.
    """
    if name == "multi_worker":  # before any other TensorFlow call: collectives are set up
        cluster, task = _cluster_from_tf_config()  # when the runtime starts
        print(f"multi_worker: this is {task['type']} {task['index']} of a cluster of "
              f"{sum(len(addresses) for addresses in cluster.values())} (TF_CONFIG); waiting "
              "until every worker has started", flush=True)
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        return (
            tf.distribute.MirroredStrategy(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
        )
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(
            gpus or [device.name for device in tf.config.list_logical_devices("CPU")])
    raise UserError(f"train.strategy: unknown strategy {name!r}")


def _cluster_from_tf_config() -> tuple[dict, dict]:
    """TF_CONFIG's cluster and task, checked enough to refuse the usual mistakes in words."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UserError("train.strategy: multi_worker needs the TF_CONFIG environment variable "
                        "(cluster and task of every worker); see docs/scale_out.md, 'Training on "
                        "several machines'")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        addresses = cluster[task["type"]]
        if not 0 <= int(task["index"]) < len(addresses):
            raise IndexError(task["index"])
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise UserError(f"TF_CONFIG: not a cluster and a task in it ({type(error).__name__}: "
                        f"{error}); expected for example {{\"cluster\": {{\"worker\": "
                        f"[\"host1:12345\", \"host2:12345\"]}}, \"task\": {{\"type\": "
                        f"\"worker\", \"index\": 0}}}}") from None
    return cluster, task


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the stage's outputs: always, except on the workers of a
    multi-worker cluster other than the chief (task "chief", or worker 0 when there is none)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


# What a collective op raises when another worker died or stopped answering (TensorFlow's
# heartbeats notice a silent worker within seconds)
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                      tf.errors.AbortedError, tf.errors.CancelledError)


def lost_worker_message(error: tf.errors.OpError, stage: str) -> str:
    # TensorFlow's message: the op's internal name, then what happened and to which task
    detail = " ".join(re.sub(r"\{\{function_node [^}]*\}\}", "", error.message).split())
    detail = detail.split(" The error could be from")[0] or type(error).__name__
    return (f"{stage}: multi_worker training lost contact with another worker ({detail[:300]}). "
            "Start the stage again on every machine: it continues from the last finished epoch "
            f"when {layout.CHECKPOINTS} is on a filesystem all machines share")


def set_precision(mixed: bool) -> None:
    """Keras' global dtype policy: ``mixed_float16`` computes in float16 with float32 weights
    (fast on GPUs with tensor cores; slower on CPUs). Logits stay float32 (see models)."""
    if mixed and not tf.config.list_logical_devices("GPU"):
        print("note: train.mixed_precision is on without a GPU: float16 on a CPU is slower, "
              "not faster", flush=True)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
