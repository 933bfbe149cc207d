"""Performance measurements of the pipeline's hot paths, as ratios measured in one run.

Everything is built here from synthetic demo images and randomly initialised models, so the
benchmark needs no earlier pipeline run and no download, and runs unchanged on a CPU or a GPU
(TensorFlow places the training on a GPU when it sees one; the TFLite latencies are CPU).
- input pipeline (shards -> decode -> shared augmentation -> normalise) images/s with no model,
  against the train step it feeds, timed on data already in memory: the student view against
  the plain student's step, both views against the distillation step;
- a distillation epoch (student + B3 teacher forward) against a plain student epoch, same data
  and trainable layers; the teacher's forward alone is timed too, to say where the time goes;
- INT8 against float32 TFLite latency per image (LiteRT, batch 1) at 1 and 2 threads, and the
  file sizes;
- given a packaged output folder, its model run by the C app (stages/c_reference/classify,
  LiteRT C API) against the Python interpreter, same threads.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import tensorflow as tf

from stages.common.benchmarking.inference_speed import c_app_vs_python_latency, tflite_int8_vs_float
from stages.common.core.params_schema import Params
from stages.common.data.augmentation import Augmentation
from stages.common.data.dataset_validation import validate_dataset
from stages.common.data.demo_data import write_demo_dataset
from stages.common.data.input_pipeline import compiled_inference, make_dataset
from stages.common.data.tfrecord_shards import Shards, write_shards
from stages.common.models.architectures import build_student, build_teacher
from stages.common.models.freezing import set_trainable
from stages.common.training.distillation import Distiller

keras = tf.keras
CLASSES = 5


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def synthetic_shards(folder: Path, images: int, student_size: int, teacher_size: int) -> Shards:
    write_demo_dataset(folder / "data", {"train": images, "val": 8, "test": 8}, seed=3)
    dataset = validate_dataset(folder / "data", max_pixels=10**8)
    write_shards(dataset, folder / "shards", {"student": student_size, "teacher": teacher_size})
    return Shards.open(folder / "shards", dataset)


def pipeline_images_per_second(shards: Shards, views: list[str], batch_size: int,
                               augmentation: Augmentation, repeats: int = 3) -> float:
    """The training input as a phase consumes it (decode, shared augmentation, normalise), with
    no model attached; the first epoch warms up (tracing, file cache), then the fastest of
    ``repeats`` epochs counts."""
    data = make_dataset(shards.records("train", views, shuffle_buffer=1024, seed=0), views,
                        batch_size, training=True, seed=0, augmentation=augmentation)
    for _ in data:
        pass
    seconds = min(_timed(lambda: [None for _ in data]) for _ in range(repeats))
    return shards.count("train") / seconds


def _student_for_finetune(size: int, params: Params) -> keras.Model:
    student = build_student(CLASSES, size, params.student.dropout)
    set_trainable(student, "finetune", params.student.unfreeze_fraction, freeze_batchnorm=True)
    return student


def distillation_vs_plain_epoch(shards: Shards, params: Params, option_passes: int) -> dict:
    """Seconds per epoch on the same shards, same trainable layers, one warm-up epoch each:
    plain student (hard labels); Distiller with the teacher online; Distiller reading teacher
    logits computed beforehand (``distillation.teacher_passes``). Also the teacher's forward
    pass alone over the epoch's images: the one-off cost of each cached pass. Models, sizes,
    batch, alpha, T and the fine-tune schedule are params.yaml's; the teacher is random (its
    speed does not depend on its weights)."""
    student, distill = params.student, params.distillation
    batch_size = student.batch_size
    student_size, teacher_size = shards.size("student"), shards.size("teacher")
    source = shards.records("train", ["student", "teacher"], shuffle_buffer=1024, seed=0)
    both = make_dataset(source, ["student", "teacher"], batch_size, training=True, seed=0,
                        augmentation=Augmentation.from_params(params.augmentation)).cache()
    student_only = both.map(lambda images, targets: (images[0], targets))
    teacher_only = both.map(lambda images, targets: images[1])
    for _ in both:  # decoded and augmented once (cache), so the epochs time the models only
        pass
    teacher = build_teacher(CLASSES, teacher_size, params.teacher.dropout, weights=None,
                            architecture=params.teacher.architecture)
    forward = compiled_inference(teacher)  # as the student stage runs it on its passes
    for images in teacher_only.take(1):
        forward(images)
    teacher_forward = min(_timed(lambda: [forward(images) for images in teacher_only])
                          for _ in range(3))
    with_logits = both.map(lambda images, targets: (
        (images[0], {"teacher_logits": forward(images[1])}), targets)).cache()
    for _ in with_logits:  # the cached pass: teacher outputs stored with the images
        pass

    def epoch_seconds(model, data, loss, repeats=3):
        """The fastest of ``repeats`` timed epochs after a warm-up one: on a shared 2-core
        machine single epochs vary by up to 2x."""
        model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss=loss)
        model.fit(data, epochs=1, verbose=0)
        return min(_timed(lambda: model.fit(data, epochs=1, verbose=0)) for _ in range(repeats))

    def distiller():
        return Distiller(_student_for_finetune(student_size, params), teacher,
                         distill.alpha, distill.temperature)

    plain = epoch_seconds(_student_for_finetune(student_size, params), student_only,
                          keras.losses.BinaryCrossentropy(from_logits=True))
    online = epoch_seconds(distiller(), both, None)
    cached = epoch_seconds(distiller(), with_logits, None)
    epochs = max(1, student.epochs_finetune)
    shipped = distill.teacher_passes
    passes = min(shipped or option_passes, epochs)

    def amortised(count):
        return round((epochs * cached + count * teacher_forward) / (epochs * plain), 3)

    return {"images": shards.count("train"), "plain_epoch_s": round(plain, 2),
            "online_epoch_s": round(online, 2), "cached_epoch_s": round(cached, 2),
            "teacher_forward_s": round(teacher_forward, 2),
            "online_ratio": round(online / plain, 3), "cached_ratio": round(cached / plain, 3),
            "finetune_epochs": epochs, "shipped_teacher_passes": shipped,
            "option_teacher_passes": passes, "cached_ratio_schedule": amortised(passes),
            "note": "cached_ratio_schedule: student.epochs_finetune epochs with "
                    "option_teacher_passes cached passes, the teacher's passes included"}


def run_benchmark(params: Params, images: int = 192, packaged_dir: Path | None = None,
                  option_passes: int = 4) -> dict:
    """Everything measured with params.yaml's sizes, batch, teacher and distillation settings."""
    student_size = params.student.input_size
    teacher_size = params.teacher.input_size
    batch_size = params.student.batch_size
    devices = [device.name for device in tf.config.list_logical_devices()]
    with tempfile.TemporaryDirectory(prefix="benchmark_") as folder:
        shards = synthetic_shards(Path(folder), images, student_size, teacher_size)
        augmentation = Augmentation.from_params(params.augmentation)
        pipeline_student = pipeline_images_per_second(shards, ["student"], batch_size,
                                                      augmentation)
        pipeline_both = pipeline_images_per_second(shards, ["student", "teacher"], batch_size,
                                                   augmentation)
        epochs = distillation_vs_plain_epoch(shards, params, option_passes)
    tflite = tflite_int8_vs_float(student_size, CLASSES)
    plain_step = images / epochs["plain_epoch_s"]
    online_step = images / epochs["online_epoch_s"]
    return {
        "devices": devices,
        "settings": {"images": images, "student_size": student_size, "teacher_size": teacher_size,
                     "teacher_architecture": params.teacher.architecture,
                     "batch_size": batch_size, "alpha": params.distillation.alpha,
                     "temperature": params.distillation.temperature},
        "input_pipeline": {
            "student_view_images_per_s": round(pipeline_student, 1),
            "both_views_images_per_s": round(pipeline_both, 1),
            "plain_train_step_images_per_s": round(plain_step, 1),
            "distillation_train_step_images_per_s": round(online_step, 1),
            "plain_ratio": round(pipeline_student / plain_step, 2),
            "distillation_ratio": round(pipeline_both / online_step, 2),
        },
        "distillation_vs_plain_epoch": epochs,
        "tflite": tflite,
        "c_app": c_app_vs_python_latency(packaged_dir) if packaged_dir is not None else None,
    }


TARGETS = {
    "pipeline_over_train_step": (">=", 5.0),
    "distillation_over_plain_epoch": ("<=", 1.3),
    "int8_over_float_latency": ("<=", 0.5),
    "int8_over_float_size": ("<=", 0.3),
    "repro_nothing_to_do_s": ("<=", 3.0),
}


def meets(value: float, target: tuple[str, float]) -> bool:
    operator, bound = target
    return value >= bound if operator == ">=" else value <= bound


def settings_text(results: dict) -> str:
    settings = results["settings"]
    return (f"{settings['teacher_architecture']} at {settings['teacher_size']} px, student at "
            f"{settings['student_size']} px, batch {settings['batch_size']}")


def table(results: dict) -> str:
    """A Markdown table: measure, value, target, met."""
    epochs, tflite = results["distillation_vs_plain_epoch"], results["tflite"]
    pipeline = results["input_pipeline"]
    rows = [
        ("input pipeline, student view / plain fine-tune train step (images/s)",
         f"{pipeline['student_view_images_per_s']} / {pipeline['plain_train_step_images_per_s']}"
         f" = {pipeline['plain_ratio']}x", "pipeline_over_train_step", pipeline["plain_ratio"]),
        ("input pipeline, both views / distillation train step, teacher online (images/s)",
         f"{pipeline['both_views_images_per_s']} / "
         f"{pipeline['distillation_train_step_images_per_s']} = {pipeline['distillation_ratio']}x",
         "pipeline_over_train_step", pipeline["distillation_ratio"]),
    ]
    online_row = (
        "distillation epoch, teacher online / plain student epoch (s)",
        f"{epochs['online_epoch_s']} / {epochs['plain_epoch_s']} = {epochs['online_ratio']}x "
        f"(teacher forward alone {epochs['teacher_forward_s']} s)",
        "distillation_over_plain_epoch", epochs["online_ratio"])
    cached_row = (
        f"distillation schedule, teacher_passes: {epochs['option_teacher_passes']} over "
        f"{epochs['finetune_epochs']} fine-tune epochs / plain schedule (passes included)",
        f"{epochs['cached_epoch_s']} / {epochs['plain_epoch_s']} = {epochs['cached_ratio']}x per "
        f"epoch; {epochs['cached_ratio_schedule']}x with the passes",
        "distillation_over_plain_epoch", epochs["cached_ratio_schedule"])
    if epochs["shipped_teacher_passes"] == 0:
        rows += [((f"**shipped** ({settings_text(results)}, teacher_passes: 0): "
                   + online_row[0]),) + online_row[1:],
                 ("option: " + cached_row[0],) + cached_row[1:]]
    else:
        rows += [((f"**shipped** ({settings_text(results)}): " + cached_row[0]),) + cached_row[1:],
                 ("option, teacher_passes: 0: " + online_row[0],) + online_row[1:]]
    for threads in (1, 2):
        latency = tflite[f"threads_{threads}"]
        rows.append((f"INT8 / float32 TFLite latency, {threads} thread(s) (ms per image)",
                     f"{latency['int8_ms']} / {latency['float_ms']} = {latency['ratio']}x",
                     "int8_over_float_latency", latency["ratio"]))
    rows.append(("INT8 / float32 file size (MB)",
                 f"{tflite['int8_bytes'] / 1e6:.2f} / {tflite['float_bytes'] / 1e6:.2f} = "
                 f"{tflite['size_ratio']}x", "int8_over_float_size", tflite["size_ratio"]))
    for threads in (1, 2) if results.get("c_app") else ():
        latency = results["c_app"][f"threads_{threads}"]
        rows.append((f"C app (LiteRT C API) / Python interpreter, packaged INT8 model, {threads} "
                     "thread(s) (ms per run; ratio: median of alternating rounds)",
                     f"{latency['c_ms']} / {latency['python_ms']}: {latency['ratio']}x "
                     f"({latency['ratio_range'][0]} to {latency['ratio_range'][1]})", None,
                     latency["ratio"]))
    if results.get("repro_nothing_to_do_s") is not None:
        rows.append(("`dvc repro` with nothing to do (s)", f"{results['repro_nothing_to_do_s']}",
                     "repro_nothing_to_do_s", results["repro_nothing_to_do_s"]))
    lines = ["| measure | measured | target | met |", "|---|---|---|---|"]
    for name, shown, key, value in rows:
        if key is None:  # measured for the record, no target
            lines.append(f"| {name} | {shown} | - | - |")
            continue
        operator, bound = TARGETS[key]
        lines.append(f"| {name} | {shown} | {operator} {bound} | "
                     f"{'yes' if meets(value, TARGETS[key]) else 'no'} |")
    return "\n".join(lines)
