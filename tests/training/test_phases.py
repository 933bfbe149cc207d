"""Training phases: one validation pass per epoch, resuming a killed phase, the resume key, the
cosine schedule, early stopping on the chosen monitor, phases of zero epochs."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf  # noqa: E402

from stages.common.scoring.metrics import f1_macro
from stages.common.training import phases
from stages.common.training.phases import EpochProgress, Phase, run_phase
from stages.common.training.resume import ResumeState


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

    repo = Path(__file__).resolve().parents[2]
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


def test_a_plans_resume_key_covers_the_images_without_labels_it_trains_on():
    """A student or QAT run on other images without labels must start over, not resume the
    checkpoints of a run on the first ones: the driver keys a plan by the pool it carries."""
    from types import SimpleNamespace

    from stages.common.core.params import read_params
    from stages.common.core.params_schema import Params
    from stages.common.training.driver import Plan, plan_resume_key, resume_key

    params = Params.from_dict(read_params(Path(__file__).resolve().parents[2] / "params.yaml"))

    def key(pool):
        plan = Plan(None, [], None, None, fingerprint=("model hashes",), save=print,
                    metrics=dict, unlabelled=pool)
        return plan_resume_key("train_student", params, plan, "data")

    def pool(content):
        return SimpleNamespace(manifest={"dataset_fingerprint": content})

    assert key(None) == resume_key("train_student", params, ("model hashes",), "data")
    assert len({key(None), key(pool("first")), key(pool("second"))}) == 3
    assert key(pool("first")) == key(pool("first"))


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


class _RawLog(EpochProgress):
    """run_phase's progress callback, recording the model's weights after every training step
    (the raw weights: an average is only swapped in at an epoch's end) and each epoch's logged
    val macro-F1; raises KeyboardInterrupt (a kill) at the end of epoch ``interrupt_at``."""

    def __init__(self, model, interrupt_at=None):
        super().__init__("t", 3)
        self.model_watched, self.interrupt_at = model, interrupt_at
        self.steps, self.f1 = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([w.copy() for w in self.model_watched.get_weights()])

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.f1.append(logs["val_f1_macro"])
        if epoch == self.interrupt_at:
            raise KeyboardInterrupt


def _averaged_run(tmp_path, monkeypatch, ema_decay, start, interrupt_at=None, ckpt="ckpt"):
    x, y, validation, train = _toy_phase_data()
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # 4 steps an epoch
    model = _tiny_model()
    model.set_weights(start)
    log = _RawLog(model, interrupt_at)
    monkeypatch.setattr(phases, "EpochProgress", lambda label, epochs: log)
    phase = Phase("finetune", 3, 0.05, 0.0, lambda: None, model,
                  tf.keras.losses.BinaryCrossentropy(from_logits=True), ema_decay=ema_decay)
    summary = run_phase(phase, model, train, validation, validation.map(lambda a, b: a), y,
                        ResumeState(tmp_path / ckpt, "key"), None, "t")
    return model, log, summary, x, y


def test_an_averaged_phase_validates_and_keeps_the_average_while_training_goes_on_raw(
        tmp_path, monkeypatch):
    """ema_decay: each epoch's validation and the weights the phase ends with are the moving
    average (warmed up: min(d, (1 + n) / (10 + n)) at update n), while the steps themselves
    follow the raw weights, exactly as without an average."""
    from stages.common.training.weight_average import warmed_up_decay

    start = _tiny_model().get_weights()
    _, raw, _, _, _ = _averaged_run(tmp_path, monkeypatch, 0.0, start, ckpt="plain")
    model, log, summary, x, y = _averaged_run(tmp_path, monkeypatch, 0.8, start)
    assert len(log.steps) == 12
    for step, (plain, averaged) in enumerate(zip(raw.steps, log.steps)):
        for a, b in zip(plain, averaged):
            np.testing.assert_array_equal(a, b, err_msg=f"step {step}")
    expected, per_epoch = [w.astype(np.float64) for w in start], []
    for update, weights in enumerate(log.steps, start=1):
        decay = warmed_up_decay(0.8, update)
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights)]
        if update % 4 == 0:
            per_epoch.append([e.copy() for e in expected])
    assert warmed_up_decay(0.8, 1) == pytest.approx(2 / 11) and warmed_up_decay(0.8, 100) == 0.8
    for kept, wanted in zip(model.get_weights(), expected):
        np.testing.assert_allclose(kept, wanted, rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.get_weights()[0], log.steps[-1][0])  # not the raw weights
    inputs = tf.keras.Input((3,))
    check = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))
    for epoch, weights in enumerate(per_epoch):
        check.set_weights([w.astype(np.float32) for w in weights])
        assert log.f1[epoch] == f1_macro(y, check(x).numpy() > 0), epoch
    assert summary["val_f1_macro"] == log.f1[-1] == f1_macro(y, model(x).numpy() > 0)
    assert not list((tmp_path / "ckpt").glob("*weight_average*"))  # gone with the phase


def test_a_killed_averaged_phase_resumes_its_average(tmp_path, monkeypatch):
    """Killed at the end of its second epoch, before that epoch's checkpoint, a phase started
    again continues from the first epoch's weights and average, and ends where an uninterrupted
    one ends."""
    start = _tiny_model().get_weights()
    whole, _, _, _, _ = _averaged_run(tmp_path, monkeypatch, 0.8, start, ckpt="whole")
    with pytest.raises(KeyboardInterrupt):
        _averaged_run(tmp_path, monkeypatch, 0.8, start, interrupt_at=1)
    assert (tmp_path / "ckpt" / "finetune_weight_average.npz").is_file()
    zeros = [np.zeros_like(w) for w in start]  # a fresh process: nothing of the killed one's
    resumed, log, _, _, _ = _averaged_run(tmp_path, monkeypatch, 0.8, zeros)
    assert len(log.steps) == 8  # epochs 2 and 3 ran again
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_worker_continues_the_chiefs_average_and_keeps_its_own_copy_apart(tmp_path):
    """In a cluster every worker validates (and early-stops) on the average: a resumed worker
    must start from the chief's, the only one on the shared filesystem, and write its own only
    to its scratch folder."""
    from stages.common.training.weight_average import WeightAverage

    ckpt, scratch = tmp_path / "ckpt", tmp_path / "scratch"
    chief = ResumeState(ckpt, "key")
    worker = ResumeState(ckpt, "key", scratch=scratch)
    name = "finetune_weight_average.npz"
    assert chief.weight_average_files("finetune") == (ckpt / name, ckpt / name)
    assert worker.weight_average_files("finetune") == (ckpt / name, scratch / name)
    model = _tiny_model()
    kept = WeightAverage(model, 0.9, *chief.weight_average_files("finetune"))
    kept.start()
    kept.updates = 7
    kept.save()
    other = _tiny_model()
    resumed = WeightAverage(other, 0.9, *worker.weight_average_files("finetune"))
    resumed.start()
    assert resumed.updates == 7
    for a, b in zip(resumed.average, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    resumed.update()
    resumed.save()
    with np.load(scratch / name) as own, np.load(ckpt / name) as chiefs:
        assert int(own["updates"]) == 8 and int(chiefs["updates"]) == 7  # the chief's untouched
