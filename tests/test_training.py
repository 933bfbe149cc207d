"""Input pipeline, shards, metrics and resumable phases (the training stages themselves run in
test_learning.py)."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf  # noqa: E402
from in_memory import in_memory_source, letterbox_split

from stages.common.core.errors import UserError
from stages.common.data.augmentation import Augmentation
from stages.common.data.demo_data import write_demo_dataset
from stages.common.data.input_pipeline import make_dataset
from stages.common.data.preprocessing import letterbox, normalize_student
from stages.common.scoring.metrics import f1_macro, multilabel_metrics, trivial_baselines
from stages.common.training import phases
from stages.common.training.phases import EpochProgress, Phase, ResumeState, run_phase


def test_metrics_hand_computed():
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    pred = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 0]])
    # class 0: TP 1, FN 1 -> F1 2/3; class 1: TP 2, FP 1 -> F1 4/5; class 2: no positives
    assert f1_macro(truth, pred) == pytest.approx((2 / 3 + 4 / 5) / 2)
    scores = multilabel_metrics(truth, pred)
    assert scores["f1_micro"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert scores["precision_macro"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert scores["per_class"][2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    baselines = trivial_baselines(truth)
    assert baselines["f1_macro_all_negative"] == 0.0
    assert baselines["f1_macro_all_positive"] == pytest.approx((2 * 2 / 6 + 2 * 2 / 6) / 2)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root / "data", {"train": 12, "val": 6, "test": 6}, seed=3)
    return root


def _records(root):
    from stages.common.data.dataset_validation import validate_dataset

    return validate_dataset(root / "data", max_pixels=10**7)


def test_training_input_without_augmentation_is_what_the_phone_feeds(tiny_dataset, tmp_path):
    """Validation and export read the shards through the tf.data pipeline; predict (and the phone)
    decode the file and letterbox it. Both must give the model the same numbers."""
    from stages.common.data.preprocessing import read_image_file
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = _records(tiny_dataset)
    write_shards(dataset, tmp_path / "shards", {"student": 48})
    shards = Shards.open(tmp_path / "shards", dataset)
    streamed, labels = [], []
    for images, targets in make_dataset(shards.records("val", ["student"]), ["student"], 4,
                                        training=False, seed=0):
        streamed.append(images.numpy())
        labels.append(targets.numpy())
    images_dir = Path(dataset.dataset_dir) / "images"
    as_predicted = np.stack(
        [
            normalize_student(letterbox(read_image_file(images_dir / r.name, 10**7), 48))
            for r in dataset.splits["val"]
        ]
    )
    np.testing.assert_array_equal(np.concatenate(streamed), as_predicted)
    np.testing.assert_array_equal(np.concatenate(labels),
                                  np.array(dataset.targets("val"), dtype=np.float32))


def test_augmentation_is_shared_between_views_and_seeded(tiny_dataset):
    dataset = _records(tiny_dataset)
    pixels, boxes = letterbox_split(dataset.dataset_dir, dataset.splits["train"], 40)
    targets = np.array(dataset.targets("train"), dtype=np.float32)
    strong = Augmentation(True, 0.05, 0.2, 0.2, 0.2, 0.2)

    def batches(seed):
        source = in_memory_source([pixels, pixels], [boxes, boxes], targets).shuffle(
            len(targets), seed=seed, reshuffle_each_iteration=True)  # as Shards.records does
        data = make_dataset(source, ["teacher", "teacher"], 12, training=True, seed=seed,
                            augmentation=strong)
        return [(a.numpy(), b.numpy()) for (a, b), _ in data.take(1)] + \
               [(a.numpy(), b.numpy()) for (a, b), _ in data.take(1)]

    run = batches(5)
    (first_a, first_b), (second_a, _) = run
    np.testing.assert_array_equal(first_a, first_b)  # both views got the same augmentation
    assert not np.allclose(first_a, second_a)  # a new epoch draws new augmentations
    assert np.array_equal(batches(5)[0][0], first_a)  # the same seed repeats exactly
    assert first_a.min() >= 0 and first_a.max() <= 255


def test_fixed_passes_repeat_the_same_augmentation_in_any_order(tiny_dataset):
    dataset = _records(tiny_dataset)
    pixels, boxes = letterbox_split(dataset.dataset_dir, dataset.splits["train"], 40)
    targets = np.array(dataset.targets("train"), dtype=np.float32)
    logits = np.arange(len(targets) * 2, dtype=np.float32).reshape(-1, 2)  # row i encodes index i
    strong = Augmentation(True, 0.05, 0.2, 0.2, 0.2, 0.2)

    def by_index(augmentation_pass, shuffle=False):
        source = in_memory_source([pixels], [boxes], targets)
        if shuffle:  # as Shards.records does for training
            source = source.shuffle(len(targets), seed=3, reshuffle_each_iteration=True)
        data = make_dataset(source, ["teacher"], 5, training=True, seed=3, augmentation=strong,
                            augmentation_pass=augmentation_pass, teacher_logits=logits)
        images = {}
        for (batch, extra), labels in data:
            for image, row, label in zip(
                batch.numpy(), extra["teacher_logits"].numpy(), labels.numpy()
            ):
                index = int(row[0]) // 2
                np.testing.assert_array_equal(label, targets[index])  # logits follow their image
                images[index] = image
        return images

    in_order, shuffled = by_index(1), by_index(1, shuffle=True)
    assert sorted(in_order) == list(range(len(targets)))
    for index, image in in_order.items():  # the teacher's pass and the student's shuffled pass
        np.testing.assert_array_equal(shuffled[index], image)
    assert not np.allclose(by_index(2)[0], in_order[0])  # another pass, another augmentation


class _CountingTeacher:
    """A tiny teacher that counts the batches it is run on."""

    def __init__(self):
        inputs = tf.keras.Input((40, 40, 3))
        pooled = tf.keras.layers.GlobalAveragePooling2D()(inputs)
        self.model = tf.keras.Model(inputs, tf.keras.layers.Dense(5, name="logits")(pooled))
        self.runs = 0

    def __call__(self, images, training=False):
        self.runs += 1
        return self.model(images, training=training)


def test_teacher_outputs_read_back_are_those_the_teacher_gives(tiny_dataset, tmp_path):
    """QAT reads the teacher's logits that the student stage saved instead of running the
    teacher again: read back, they must be exactly what running it gives, every pass fed as
    before; and outputs made under another key must not be read."""
    from stages.common.core.params import load_params
    from stages.common.data.input_pipeline import distillation_data
    from stages.common.data.teacher_outputs import TeacherOutputs
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = _records(tiny_dataset)
    write_shards(dataset, tmp_path / "shards", {"student": 32, "teacher": 40})
    shards = Shards.open(tmp_path / "shards", dataset)
    augmentation = load_params(Path(__file__).parents[1] / "params.yaml").augmentation

    def data(teacher, passes, known=None):
        return distillation_data(dataset, shards, teacher, 4, 3, augmentation, 64, passes,
                                 "key", known)

    teacher = _CountingTeacher()
    first = data(teacher, 2)
    first.teacher_outputs.save(tmp_path / "teacher_outputs.npz")
    shape = (shards.count("val"), shards.count("train"), len(dataset.classes))
    assert TeacherOutputs.load(tmp_path / "teacher_outputs.npz", "another key", shape) is None
    np.savez(tmp_path / "unkeyed.npz", val=np.zeros((6, 5)))  # not written by TeacherOutputs
    assert TeacherOutputs.load(tmp_path / "unkeyed.npz", "key", shape) is None
    known = TeacherOutputs.load(tmp_path / "teacher_outputs.npz", "key", shape)
    assert len(known.passes) == 2
    # damaged or of other shapes: named, never used
    saved = (tmp_path / "teacher_outputs.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(saved[:len(saved) // 2])
    with pytest.raises(UserError, match=f"{tmp_path / 'cut.npz'}: damaged .*dvc repro -f "
                                        "train_student"):
        TeacherOutputs.load(tmp_path / "cut.npz", "key", shape)
    other = (shape[0], shape[1] + 1, shape[2])
    with pytest.raises(
        UserError, match=rf"pass_0 is \({shape[1]}, 5\), expected \({shape[1] + 1}, 5\)"
    ):
        TeacherOutputs.load(tmp_path / "teacher_outputs.npz", "key", other)

    teacher.runs = 0
    reused = data(teacher, 2, known)
    assert teacher.runs == 0  # nothing run again
    fresh = data(teacher, 3)  # the teacher run anew: the same logits as those read back
    np.testing.assert_array_equal(fresh.teacher_val_logits, known.val)
    for number in range(2):
        np.testing.assert_array_equal(fresh.teacher_outputs.passes[number], known.passes[number])
    teacher.runs = 0
    extended = data(teacher, 3, known)  # a third pass is computed, the first two read
    assert teacher.runs == 3  # 12 training images in batches of 4: one pass
    np.testing.assert_array_equal(extended.teacher_outputs.passes[2],
                                  fresh.teacher_outputs.passes[2])

    def fed(distill_data):
        return [extra["teacher_logits"].numpy() for (_, extra), _ in
                distill_data.distill_train.take(distill_data.distill_steps_per_epoch * 2)]

    for mine, theirs in zip(fed(reused), fed(first)):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(ValueError, match="another key"):
        distillation_data(dataset, shards, teacher, 4, 3, augmentation, 64, 2, "other", known)


def test_shards_stream_the_same_pixels_and_shuffle_by_seed(tiny_dataset, tmp_path):
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = _records(tiny_dataset)
    write_shards(dataset, tmp_path / "shards", {"student": 48, "teacher": 64}, images_per_shard=5)
    assert len(list((tmp_path / "shards").glob("train-*.tfrecord"))) == 3  # 12 images, 5 a shard
    shards = Shards.open(tmp_path / "shards", dataset)
    for view, size in (("student", 48), ("teacher", 64)):
        pixels, boxes = letterbox_split(dataset.dataset_dir, dataset.splits["train"], size)
        streamed = list(shards.records("train", [view]).as_numpy_iterator())
        np.testing.assert_array_equal(np.stack([element[0][0] for element in streamed]), pixels)
        np.testing.assert_array_equal(np.stack([element[1][0] for element in streamed]), boxes)
    np.testing.assert_array_equal(
        np.stack([element[2] for element in streamed]), np.array(dataset.targets("train")))
    assert [int(element[3]) for element in streamed] == list(range(12))
    chosen = np.concatenate(list(shards.pixel_chunks("train", "student", 2, indices=[1, 7])))
    np.testing.assert_array_equal(chosen, letterbox_split(
        dataset.dataset_dir, [dataset.splits["train"][i] for i in (1, 7)], 48)[0])

    def order(seed):
        data = shards.records("train", ["student"], shuffle_buffer=4, seed=seed)
        return ([int(element[3]) for element in data.as_numpy_iterator()],
                [int(element[3]) for element in data.as_numpy_iterator()])

    first, second = order(1)
    assert sorted(first) == sorted(second) and first != second  # every image, a new order per epoch
    assert order(1) == (first, second)  # seeded


def test_png_shards_hold_the_same_pixels(tiny_dataset, tmp_path):
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = _records(tiny_dataset)
    streamed = {}
    for encoding in ("raw", "png"):
        write_shards(dataset, tmp_path / encoding, {"student": 48}, encoding=encoding)
        streamed[encoding] = np.concatenate(list(Shards.open(tmp_path / encoding).pixel_chunks(
            "val", "student")))
    np.testing.assert_array_equal(streamed["png"], streamed["raw"])
    assert streamed["raw"].shape == (6, 48, 48, 3)


def test_shards_of_another_dataset_version_are_refused(tiny_dataset, tmp_path):
    from stages.common.core.errors import UserError
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.tfrecord_shards import Shards, write_shards

    write_shards(_records(tiny_dataset), tmp_path / "shards", {"student": 48})
    write_demo_dataset(tmp_path / "other", {"train": 12, "val": 6, "test": 6}, seed=9)
    with pytest.raises(UserError, match="another version of the prepared data"):
        Shards.open(tmp_path / "shards", validate_dataset(tmp_path / "other", max_pixels=10**7))
    with pytest.raises(UserError, match="run the shards stage first"):
        Shards.open(tmp_path / "nowhere")


def _tiny_model():
    inputs = tf.keras.Input((3,))
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="logits")(inputs))


def _toy_phase_data():
    """(x, y, val batches, train batches on the opposite labels): a model trained on the
    latter gets worse on val with every epoch."""
    x = np.random.default_rng(1).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, :2] > 0).astype(np.float32)
    return (x, y, tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
            tf.data.Dataset.from_tensor_slices((x, 1.0 - y)).batch(8))


def test_one_validation_pass_reports_what_kerass_evaluate_reports():
    """run_phase gives fit no validation data: its Validation callback's single pass must report
    the val loss terms evaluate would (a plain model's loss weighted by batch size, a
    Distiller's terms averaged per batch), and macro-F1 at 0.5 on those logits."""
    from stages.common.training.distillation import Distiller
    from stages.common.training.phases import validation_logs

    rng = np.random.default_rng(0)
    features = rng.normal(size=(10, 3)).astype(np.float32)
    targets = (rng.random((10, 2)) < 0.5).astype(np.float32)
    teacher_logits = rng.normal(size=(10, 2)).astype(np.float32)
    student = _tiny_model()
    loss = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    student.compile(loss=loss)
    plain = tf.data.Dataset.from_tensor_slices((features, targets)).batch(4)  # 4 + 4 + 2
    logs = validation_logs(student, loss, student, plain, targets)
    assert logs["val_loss"] == pytest.approx(student.evaluate(plain, verbose=0), rel=1e-6)
    logits = student(features).numpy()
    assert logs["val_f1_macro"] == f1_macro(targets, logits > 0)

    distiller = Distiller(student, _tiny_model(), alpha=0.7, temperature=2.0)
    distiller.compile()
    distilled = tf.data.Dataset.from_tensor_slices(
        ((features, {"teacher_logits": teacher_logits}), targets)).batch(4)
    logs = validation_logs(distiller, None, student, distilled, targets)
    expected = distiller.evaluate(distilled, verbose=0, return_dict=True)
    for name in ("loss", "hard_loss", "soft_loss"):
        assert logs[f"val_{name}"] == pytest.approx(expected[name], rel=1e-6), name
    assert logs["val_f1_macro"] == f1_macro(targets, logits > 0)


class _EpochLog(EpochProgress):
    """run_phase's own progress callback, which also records the epochs begun and the watched
    model's weights at the start and end of each, and raises KeyboardInterrupt (a kill) at the
    end of epoch ``interrupt_at``, before that epoch is backed up."""

    def __init__(self, watched=None, interrupt_at=None):
        super().__init__("t", 5)
        self.begun, self.watched, self.interrupt_at = [], watched, interrupt_at
        self.at_begin, self.at_end = {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.begun.append(epoch)
        if self.watched is not None:
            self.at_begin[epoch] = [w.numpy().copy() for w in self.watched.weights]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.watched is not None:
            self.at_end[epoch] = [w.numpy().copy() for w in self.watched.weights]
        if epoch == self.interrupt_at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("distilled", [False, True])
def test_killed_phase_resumes_from_last_finished_epoch(tmp_path, distilled, monkeypatch):
    from stages.common.training.distillation import Distiller

    tf.keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = (x[:, :2] > 0).astype(np.float32)
    inputs = tf.data.Dataset.from_tensor_slices(x).batch(4)
    model = _tiny_model()
    if distilled:  # a subclassed model: it must be built before BackupAndRestore can save it
        data = tf.data.Dataset.from_tensor_slices(((x, x), y)).batch(4)
        fit_model, loss = Distiller(model, _tiny_model(), 0.7, 2.0), None
    else:
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        fit_model, loss = model, tf.keras.losses.BinaryCrossentropy(from_logits=True)

    phase = Phase("head", 5, 0.01, 0.0, lambda: None, fit_model, loss)

    def watched_by(log):
        monkeypatch.setattr(phases, "EpochProgress", lambda label, epochs: log)
        return log

    state = ResumeState(tmp_path / "ckpt", "key-1")
    before_kill = watched_by(_EpochLog(model, interrupt_at=2))
    with pytest.raises(KeyboardInterrupt):
        run_phase(phase, model, data, data, inputs, y, state, None, "t")
    assert state.has_progress()

    model.set_weights([np.zeros_like(w) for w in model.get_weights()])  # a fresh process
    log = watched_by(_EpochLog(model))
    state = ResumeState(tmp_path / "ckpt", "key-1")
    summary = run_phase(phase, model, data, data, inputs, y, state, None, "t")
    assert log.begun == [2, 3, 4]  # epochs 0 and 1 were finished and backed up before the kill
    for restored, saved in zip(log.at_begin[2], before_kill.at_end[1]):
        np.testing.assert_array_equal(restored, saved)  # it continues from epoch 1's weights
    assert summary["epochs_run"] == 5

    again = watched_by(_EpochLog())
    assert run_phase(phase, model, data, data, inputs, y,
                     ResumeState(tmp_path / "ckpt", "key-1"), None, "t") == summary
    assert again.begun == []  # a finished phase is not trained again

    assert not ResumeState(tmp_path / "ckpt", "key-2").has_progress()  # new params: start over


class _F1Log(EpochProgress):
    """run_phase's progress callback, recording each epoch's logged val macro-F1."""

    def __init__(self):
        super().__init__("t", 4)
        self.f1 = []

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.f1.append(logs["val_f1_macro"])


def test_a_phases_final_f1_is_that_of_the_weights_it_keeps(tmp_path, monkeypatch):
    """run_phase reports the phase's macro-F1 from the epoch whose weights it ends with, not by
    running the model again: with early stopping, the best epoch's, which Keras restores."""
    x, y, validation, train = _toy_phase_data()
    model = _tiny_model()
    phase = Phase("finetune", 4, 0.5, 0.0, lambda: None, model,
                  tf.keras.losses.BinaryCrossentropy(from_logits=True), early_stopping_patience=9)
    log = _F1Log()
    monkeypatch.setattr(phases, "EpochProgress", lambda label, epochs: log)
    summary = run_phase(phase, model, train, validation, validation.map(lambda a, b: a), y,
                        ResumeState(tmp_path / "ckpt", "key"), None, "t")
    kept = f1_macro(y, model(x).numpy() > 0)
    assert summary["val_f1_macro"] == kept == log.f1[0]  # epoch 1's weights, restored
    assert log.f1[-1] < kept  # the last epoch's figure would have been wrong


def test_the_resume_key_is_every_param_the_stage_declares():
    """A killed run resumes only from checkpoints made under the same params. The key took some
    params by hand and left out train.* and shards.shuffle_buffer; it is now every param the
    stage's dvc.yaml entry declares, and nothing else."""
    import copy

    import yaml

    from stages.common.core.params import read_params, stage_params
    from stages.common.core.params_schema import Params
    from stages.common.training.driver import resume_key

    repo = Path(__file__).resolve().parents[1]
    declared = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    base = read_params(repo / "params.yaml")
    changes = {
        "seed": 7,
        "train.strategy": "mirrored",
        "train.mixed_precision": True,
        "shards.shuffle_buffer": 17,
        "augmentation.color_jitter.brightness": 0.5,
        "teacher.dropout": 0.1,
        "student.batch_size": 3,
        "distillation.alpha": 0.5,
        "qat.lr": 0.5,
        "export.representative_samples": 3,
        "threshold_search.grid_step": 0.02,
    }
    for stage in ("train_teacher", "train_student", "qat"):
        names = stage_params(stage)
        assert names == declared[stage]["params"]
        key = resume_key(stage, Params.from_dict(base), ("model hashes",), "data")
        for dotted, value in changes.items():
            changed = copy.deepcopy(base)
            *sections, last = dotted.split(".")
            target = changed
            for section in sections:
                target = target[section]
            target[last] = value
            covered = any(dotted == name or dotted.startswith(name + ".") for name in names)
            other = resume_key(stage, Params.from_dict(changed), ("model hashes",), "data")
            assert (other != key) == covered, (stage, dotted)
        assert resume_key(stage, Params.from_dict(base), ("other hashes",), "data") != key


def test_the_cosine_schedule_rises_then_decays_towards_zero():
    rates = [phases.cosine_learning_rate(epoch, 6, 1.0, 2) for epoch in range(6)]
    # warm-up: 1/3, 2/3; then 0.5 (1 + cos(pi k / 4)) for k = 0..3
    assert rates == pytest.approx([1 / 3, 2 / 3, 1.0, 0.8535534, 0.5, 0.1464466], abs=1e-6)
    assert phases.cosine_learning_rate(0, 1, 0.1, 0) == pytest.approx(0.1)


def test_a_cosine_phase_trains_each_epoch_at_its_scheduled_rate(tmp_path, monkeypatch):
    """The optimizer's learning rate follows the cosine, not a plateau reduction (which a
    validation loss that rises every epoch would trigger)."""
    _, y, validation, train = _toy_phase_data()
    model = _tiny_model()
    phase = Phase("finetune", 4, 0.2, 0.0, lambda: None, model,
                  tf.keras.losses.BinaryCrossentropy(from_logits=True), reduce_lr_patience=1,
                  cosine_warmup_epochs=1)
    seen = []

    class RateLog(tf.keras.callbacks.Callback):
        def __init__(self, *_):
            super().__init__()

        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(tf.keras.backend.get_value(self.model.optimizer.learning_rate)))

    monkeypatch.setattr(phases, "EpochProgress", RateLog)
    run_phase(phase, model, train, validation, validation.map(lambda a, b: a), y,
              ResumeState(tmp_path / "ckpt", "key"), None, "t")
    # 0.2 / 2, then 0.2 * 0.5 (1 + cos(pi k / 3)) for k = 0..2
    assert seen == pytest.approx([0.1, 0.2, 0.15, 0.05], abs=1e-6)


@pytest.mark.parametrize("monitor, kept_epoch", [("val_loss", 1), ("val_f1_macro", 2)])
def test_early_stopping_keeps_the_best_epoch_by_the_monitor_chosen(tmp_path, monkeypatch,
                                                                   monitor, kept_epoch):
    """Scripted validation figures where the best loss and the best macro-F1 fall on different
    epochs: the phase ends with the weights, and reports the F1, of the epoch its monitor picks."""
    scripted = [{"val_loss": 1.0, "val_f1_macro": 0.2}, {"val_loss": 0.5, "val_f1_macro": 0.3},
                {"val_loss": 0.7, "val_f1_macro": 0.9}, {"val_loss": 0.8, "val_f1_macro": 0.4}]
    monkeypatch.setattr(phases, "validation_logs", lambda *args: scripted.pop(0))
    weights_after = []

    class WeightLog(tf.keras.callbacks.Callback):
        def __init__(self, *_):
            super().__init__()

        def on_epoch_end(self, epoch, logs=None):
            weights_after.append([w.copy() for w in self.model.get_weights()])

    monkeypatch.setattr(phases, "EpochProgress", WeightLog)
    _, y, data, _ = _toy_phase_data()
    model = _tiny_model()
    phase = Phase("finetune", 4, 0.1, 0.0, lambda: None, model,
                  tf.keras.losses.BinaryCrossentropy(from_logits=True), early_stopping_patience=9,
                  early_stopping_monitor=monitor)
    summary = run_phase(phase, model, data, data, data.map(lambda a, b: a), y,
                        ResumeState(tmp_path / "ckpt", "key"), None, "t")
    assert summary["val_f1_macro"] == [0.2, 0.3, 0.9, 0.4][kept_epoch]
    for kept, now in zip(weights_after[kept_epoch], model.get_weights()):
        np.testing.assert_array_equal(kept, now)


def test_mixup_blends_views_labels_and_teacher_probabilities_hand_computed():
    from stages.common.data.augmentation import mix_batch

    view = tf.constant([[[[0.0]]], [[[100.0]]]])  # two 1x1 images
    targets = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    teacher = tf.constant([[0.0, 0.0], [float(np.log(3.0)), 0.0]])  # probabilities 0.5, 0.75
    (blended,), mixed, logits = mix_batch([view], targets, teacher, tf.constant([0.75, 0.25]))
    # partner of i: B-1-i; 0.75 * 0 + 0.25 * 100 and 0.25 * 100 + 0.75 * 0
    np.testing.assert_allclose(blended.numpy().ravel(), [25.0, 25.0])
    np.testing.assert_allclose(mixed.numpy(), [[0.75, 0.25], [0.75, 0.25]])
    # first example: 0.75 * 0.5 + 0.25 * 0.75 = 0.5625 -> logit log(0.5625 / 0.4375)
    np.testing.assert_allclose(logits.numpy()[0], [np.log(0.5625 / 0.4375), 0.0], atol=1e-5)


def test_mixup_in_a_fixed_pass_is_replayed_identically_and_shared_by_views(tiny_dataset):
    from stages.common.data.augmentation import mixup_weights

    dataset = _records(tiny_dataset)
    pixels, boxes = letterbox_split(dataset.dataset_dir, dataset.splits["train"], 40)
    targets = np.array(dataset.targets("train"), dtype=np.float32)
    mixing = Augmentation(True, 0.05, 0.2, 0.2, 0.2, 0.2, mixup=0.4)

    def one_pass():
        data = make_dataset(in_memory_source([pixels, pixels], [boxes, boxes], targets),
                            ["teacher", "teacher"], 12, training=True, seed=3,
                            augmentation=mixing, augmentation_pass=0)
        return [((a.numpy(), b.numpy()), y.numpy()) for (a, b), y in data]

    first, again = one_pass(), one_pass()
    for ((a, b), y), ((a2, _), y2) in zip(first, again):
        np.testing.assert_array_equal(a, b)  # both views blended alike
        np.testing.assert_array_equal(a, a2)  # a fixed pass replays its blends
        np.testing.assert_array_equal(y, y2)
    labels = np.concatenate([y for _, y in first])
    assert ((labels > 0) & (labels < 1)).any()  # blended labels
    assert labels.min() >= 0 and labels.max() <= 1
    # Beta(0.4, 0.4) weights: in [0, 1], spread out (its standard deviation is about 0.37)
    weights = mixup_weights(tf.random.stateless_uniform([12, 6], seed=[1, 2]), 0.4).numpy()
    assert ((weights >= 0) & (weights <= 1)).all() and weights.std() > 0.1


def test_a_phase_of_zero_epochs_reports_what_a_phase_that_ran_reports(tmp_path):
    """teacher.epochs_head: 0 is allowed; the report reads every key of every phase's summary
    (a zero-epoch summary without stopped_early once ended the pipeline in a traceback)."""
    _, y, data, _ = _toy_phase_data()
    model = _tiny_model()
    summaries = {}
    for epochs in (0, 1):
        phase = Phase(f"p{epochs}", epochs, 0.1, 0.0, lambda: None, model,
                      tf.keras.losses.BinaryCrossentropy(from_logits=True),
                      early_stopping_patience=2)
        summaries[epochs] = run_phase(phase, model, data, data, data.map(lambda a, b: a), y,
                                      ResumeState(tmp_path / "ckpt", "key"), None, "t")
    assert set(summaries[0]) == set(summaries[1])
    assert summaries[0]["stopped_early"] is False and summaries[0]["epochs_run"] == 0
