"""The distillation loss against hand-computed values, and the Distiller that uses it."""
import numpy as np
import pytest
import tensorflow as tf  # noqa: E402

from stages.common.training.distillation import Distiller, distillation_terms, hard_loss, soft_loss

LABELS = tf.constant([[1.0, 0.0]])
STUDENT = tf.constant([[2.0, -1.0]])
TEACHER = tf.constant([[1.0, 3.0]])


def test_distillation_loss_hand_computed():
    # hard: mean(log(1 + e^-2), log(1 + e^-1)) = mean(0.126928, 0.313262)
    assert float(hard_loss(LABELS, STUDENT)) == pytest.approx(0.2200948, abs=1e-6)
    # soft, T = 2: targets sigmoid(0.5), sigmoid(1.5); student logits 1.0, -0.5
    assert float(soft_loss(STUDENT, TEACHER, 2.0)) == pytest.approx(0.7868333, abs=1e-6)
    # 0.7 * 0.2200948 + 0.3 * 2^2 * 0.7868333
    total, hard, soft = distillation_terms(LABELS, STUDENT, TEACHER, alpha=0.7, temperature=2.0)
    assert float(total) == pytest.approx(1.0982663, abs=1e-6)
    assert (float(hard), float(soft)) == pytest.approx((0.2200948, 0.7868333), abs=1e-6)


def test_the_distiller_reports_the_hand_computed_terms():
    """The Distiller's own loss on fixed logits: identity 'models' that output them."""
    inputs = tf.keras.Input((2,))
    identity = tf.keras.Model(inputs, tf.keras.layers.Activation("linear")(inputs))
    teacher = tf.keras.Model(inputs, tf.keras.layers.Activation("linear")(inputs))
    data = tf.data.Dataset.from_tensor_slices(((STUDENT, TEACHER), LABELS)).batch(1)
    distiller = Distiller(identity, teacher, alpha=0.7, temperature=2.0)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    scores = distiller.evaluate(data, verbose=0, return_dict=True)
    assert scores["loss"] == pytest.approx(1.0982663, abs=1e-6)
    assert scores["hard_loss"] == pytest.approx(0.2200948, abs=1e-6)
    assert scores["soft_loss"] == pytest.approx(0.7868333, abs=1e-6)


def test_alpha_extremes_and_temperature_factor():
    hard = float(hard_loss(LABELS, STUDENT))
    assert float(distillation_terms(LABELS, STUDENT, TEACHER, 1.0, 2.0)[0]) == pytest.approx(hard)
    for temperature in (1.0, 2.0, 4.0):
        soft = float(soft_loss(STUDENT, TEACHER, temperature))
        only_soft = float(distillation_terms(LABELS, STUDENT, TEACHER, 0.0, temperature)[0])
        assert only_soft == pytest.approx(temperature ** 2 * soft)


def test_an_image_without_labels_takes_the_teachers_sigmoid_as_its_hard_target():
    """NaN targets mark an image without labels (Shards.records with unlabelled): its hard target
    is sigmoid(teacher logits), label smoothing as for a label; with alpha 1 (the labels alone) it
    adds nothing, and the mean is still over the whole batch."""
    labels = tf.constant([[1.0, 0.0], [np.nan, np.nan]])
    student = tf.constant([[2.0, -1.0], [0.5, 1.5]])
    teacher = tf.constant([[1.0, 3.0], [-2.0, 4.0]])
    as_labelled = tf.concat([LABELS, tf.sigmoid(teacher[1:])], axis=0)
    for smoothing in (0.0, 0.1):
        total, hard, soft = distillation_terms(labels, student, teacher, 0.7, 2.0, smoothing)
        assert float(hard) == pytest.approx(float(hard_loss(as_labelled, student, smoothing)),
                                            abs=1e-6)
        assert float(soft) == pytest.approx(float(soft_loss(student, teacher, 2.0)), abs=1e-6)
        assert float(total) == pytest.approx(0.7 * float(hard) + 0.3 * 4 * float(soft), abs=1e-6)
    total, hard, _ = distillation_terms(labels, student, teacher, 1.0, 2.0)
    assert float(total) == float(hard) == pytest.approx(float(hard_loss(LABELS, STUDENT)) / 2,
                                                        abs=1e-6)
    # an alpha held in the Distiller's float64 variable decides the same way
    alpha = tf.Variable(1.0, dtype=tf.float64)
    assert float(distillation_terms(labels, student, teacher, alpha, 2.0)[1]) == float(hard)


def test_the_distiller_trains_on_images_without_labels_with_finite_gradients():
    student, teacher = _tiny("student", 1), _tiny("teacher", 2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = (rng.uniform(size=(16, 2)) < 0.5).astype(np.float32)
    y[::2] = np.nan
    distiller = Distiller(student, teacher, alpha=0.7, temperature=2.0, label_smoothing=0.1)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    history = distiller.fit(tf.data.Dataset.from_tensor_slices(((x, x), y)).batch(8), epochs=2,
                            verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(np.isfinite(w.numpy()).all() for w in student.weights)


def _tiny(name, seed):
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((4,))
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2, name=f"{name}_dense")(inputs), name=name)


def test_distiller_trains_only_the_student():
    student, teacher = _tiny("student", 1), _tiny("teacher", 2)
    teacher_before = [w.numpy().copy() for w in teacher.weights]
    student_before = [w.numpy().copy() for w in student.weights]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (rng.uniform(size=(32, 2)) < 0.5).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(((x, x), y)).batch(8)
    distiller = Distiller(student, teacher, alpha=0.7, temperature=2.0)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    first = distiller.evaluate(data, verbose=0, return_dict=True)
    expected = float(distillation_terms(y, student(x), teacher(x), 0.7, 2.0)[0])
    assert first["loss"] == pytest.approx(expected, rel=1e-5)
    with_logits = tf.data.Dataset.from_tensor_slices(
        ((x, {"teacher_logits": teacher(x).numpy()}), y)).batch(8)
    precomputed = distiller.evaluate(with_logits, verbose=0, return_dict=True)
    assert precomputed["loss"] == pytest.approx(first["loss"], rel=1e-6)  # teacher logits given
    distiller.fit(data, epochs=5, verbose=0)
    assert distiller.evaluate(data, verbose=0, return_dict=True)["loss"] < first["loss"]
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(teacher_before, teacher.weights))
    assert teacher.trainable is False
    # its name, not Keras' numbered one (distiller_1 for the second in a process)
    assert distiller.name == Distiller(student, teacher, 0.5, 2.0).name == "distiller"
    assert [w.name for w in distiller.trainable_weights] == [w.name for w in student.weights]
    assert not all(np.array_equal(a, b.numpy()) for a, b in zip(student_before, student.weights))


def test_label_smoothing_pulls_the_hard_targets_towards_one_half():
    # s = 0.2: targets 0.9 and 0.1; BCE(t, z) = log(1 + e^z) - t z
    # 0.5 * ((log(1 + e^2) - 1.8) + (log(1 + e^-1) + 0.1)) = 0.5 * (0.326928 + 0.413262)
    assert float(hard_loss(LABELS, STUDENT, 0.2)) == pytest.approx(0.3700948, abs=1e-6)
    keras_bce = tf.keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.2)
    assert float(keras_bce(LABELS, STUDENT)) == pytest.approx(0.3700948, abs=1e-6)
    total, hard, _ = distillation_terms(LABELS, STUDENT, TEACHER, 1.0, 2.0, label_smoothing=0.2)
    assert float(total) == float(hard) == pytest.approx(0.3700948, abs=1e-6)
    distiller = Distiller(_tiny("s", 1), _tiny("t", 2), 1.0, 2.0, label_smoothing=0.2)
    assert float(distiller.validation_terms(LABELS, STUDENT, {"teacher_logits": TEACHER})[1]) \
        == pytest.approx(0.3700948, abs=1e-6)


def _with_batch_norm(name):
    inputs = tf.keras.Input((2,))
    normalised = tf.keras.layers.BatchNormalization(momentum=0.0, name=f"{name}_bn")(inputs)
    return tf.keras.Model(inputs, normalised, name=name)


def test_the_student_trains_in_training_mode_and_is_judged_in_inference_mode():
    """Batch normalisation shows the mode: its moving mean moves to the batch mean (momentum 0)
    in training mode only. A training step moves the student's, never the teacher's; a
    validation step and the Distiller's own call move nothing and use the moving statistics."""
    student, teacher = _with_batch_norm("student"), _with_batch_norm("teacher")
    x = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    y = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    distiller = Distiller(student, teacher, alpha=0.5, temperature=2.0)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(0.0))
    data = tf.data.Dataset.from_tensor_slices(((x, x), y)).batch(2)
    distiller.evaluate(data, verbose=0)
    assert np.array_equal(student.get_layer("student_bn").moving_mean.numpy(), [0.0, 0.0])
    distiller.fit(data, epochs=1, verbose=0)
    assert student.get_layer("student_bn").moving_mean.numpy() == pytest.approx([2.0, 4.0])
    assert np.array_equal(teacher.get_layer("teacher_bn").moving_mean.numpy(), [0.0, 0.0])
    # inference mode: (x - moving mean) / sqrt(moving variance + epsilon), not the batch's own
    other = x + np.array([[10.0, 0.0], [0.0, 0.0]], np.float32)
    expected = student(other, training=False).numpy()
    assert np.array_equal(distiller((other, x)).numpy(), expected)  # the student's input only
    assert not np.allclose(expected, student(other, training=True).numpy())


def test_the_students_regularisation_losses_are_minimised_with_the_distillation_loss():
    """A zero input gives the kernel no gradient from the data: only the L2 penalty moves it,
    by lr * 2 * l2 * w in one SGD step (1 - 0.1 * 2 * 0.5 = 0.9)."""
    inputs = tf.keras.Input((2,))
    dense = tf.keras.layers.Dense(1, kernel_initializer="ones",
                                  kernel_regularizer=tf.keras.regularizers.L2(0.5))
    student = tf.keras.Model(inputs, dense(inputs))
    teacher = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs))
    distiller = Distiller(student, teacher, alpha=0.5, temperature=2.0)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    x = np.zeros((4, 2), np.float32)
    data = tf.data.Dataset.from_tensor_slices(((x, x), np.ones((4, 1), np.float32))).batch(4)
    distiller.fit(data, epochs=1, verbose=0)
    assert dense.kernel.numpy() == pytest.approx(np.full((2, 1), 0.9))


def test_the_teacher_answers_in_inference_mode_while_the_student_trains():
    """A teacher with dropout: in training mode its logits would be random; the soft term the
    training step reports is the one of its inference-mode logits (SGD at 0 keeps the student
    as it was)."""
    tf.keras.utils.set_random_seed(3)
    inputs = tf.keras.Input((4,))
    teacher = tf.keras.Model(inputs, tf.keras.layers.Dropout(0.5)(
        tf.keras.layers.Dense(2)(inputs)))
    student = _tiny("student", 1)
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    y = np.zeros((8, 2), np.float32)
    distiller = Distiller(student, teacher, alpha=0.5, temperature=2.0)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(0.0))
    history = distiller.fit(tf.data.Dataset.from_tensor_slices(((x, x), y)).batch(8), epochs=1,
                            verbose=0)
    expected = float(soft_loss(student(x), teacher(x, training=False), 2.0))
    assert history.history["soft_loss"][0] == pytest.approx(expected, rel=1e-6)
    assert float(soft_loss(student(x), teacher(x, training=True), 2.0)) != pytest.approx(
        expected, rel=1e-3)


def _fallback_run(tmp_path, teacher_f1_macro, with_summary=False):
    """Three epochs of run_phase on a Distiller whose callback drops the teacher once the val
    macro-F1 reaches ``teacher_f1_macro``: (history's logs per epoch, the distiller[, the
    phase's summary and a function that runs the same phase again])."""
    from stages.common.training.distillation import LabelsOnlyOnceCaughtUp
    from stages.common.training.phases import Phase, run_phase
    from stages.common.training.resume import ResumeState

    student, teacher = _tiny("student", 1), _tiny("teacher", 2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = (rng.uniform(size=(16, 2)) < 0.5).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(((x, x), y)).batch(8)
    distiller = Distiller(student, teacher, alpha=0.7, temperature=2.0)
    seen = []

    class Record(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))

    def run(distiller):
        phase = Phase("finetune", 3, 0.01, 0.0, lambda: None, distiller, None,
                      callbacks=(LabelsOnlyOnceCaughtUp(distiller, teacher_f1_macro), Record()),
                      summary_facts=distiller.facts)
        return run_phase(phase, distiller.student, data, data,
                         tf.data.Dataset.from_tensor_slices(x).batch(8), y,
                         ResumeState(tmp_path / "ckpt", "key"), None, "t")

    summary = run(distiller)
    return (seen, distiller, summary, run) if with_summary else (seen, distiller)


def test_the_student_trains_on_the_labels_alone_once_it_reaches_its_teacher(tmp_path):
    """A teacher at val macro-F1 0 is reached after the first epoch: from the second on the loss
    the Distiller minimises is the hard term alone, in the same compiled training step."""
    seen, distiller = _fallback_run(tmp_path, teacher_f1_macro=0.0)
    assert [epoch["distillation_alpha"] for epoch in seen] == [0.7, 1.0, 1.0]
    first, *rest = seen
    expected = 0.7 * first["hard_loss"] + 0.3 * 4.0 * first["soft_loss"]
    assert first["loss"] == pytest.approx(expected, rel=1e-5)
    for epoch in rest:
        assert epoch["loss"] == pytest.approx(epoch["hard_loss"], rel=1e-6)
        assert epoch["soft_loss"] > 0  # still measured, no longer minimised
    assert int(distiller.labels_only_from_epoch.numpy()) == 2
    assert distiller.alpha_in_use() == 1.0  # what the student's model.json hands QAT


def test_a_teacher_the_student_never_reaches_teaches_every_epoch(tmp_path):
    seen, distiller = _fallback_run(tmp_path, teacher_f1_macro=1.01)
    assert [epoch["distillation_alpha"] for epoch in seen] == [0.7, 0.7, 0.7]
    assert all(epoch["loss"] > epoch["hard_loss"] for epoch in seen)
    assert int(distiller.labels_only_from_epoch.numpy()) == 0
    assert distiller.alpha_in_use() == 0.7  # exactly the params' value, not float32's


def test_a_resumed_run_keeps_the_fallback(tmp_path):
    """Keras' BackupAndRestore checkpoints the Distiller: the weight it had reached and the epoch
    it fell back at come back with it."""
    distiller = Distiller(_tiny("s", 1), _tiny("t", 2), alpha=0.7, temperature=2.0)
    distiller.use_labels_only(from_epoch=3)
    saved = tf.train.Checkpoint(model=distiller).save(str(tmp_path / "ckpt"))
    fresh = Distiller(_tiny("s", 1), _tiny("t", 2), alpha=0.7, temperature=2.0)
    tf.train.Checkpoint(model=fresh).restore(saved).expect_partial()
    assert float(fresh.alpha.numpy()) == 1.0
    assert int(fresh.labels_only_from_epoch.numpy()) == 3
    assert fresh.alpha_in_use() == 1.0


def test_a_phase_finished_by_an_earlier_run_hands_back_its_fallback(tmp_path):
    """A stage killed after its fine-tune phase finished but before it saved reuses the phase
    when started again: the epoch it fell back at comes back from the phase's summary, so that
    QAT distils with the alpha the student really ended with."""
    _, distiller, summary, run_again = _fallback_run(tmp_path, 0.0, with_summary=True)
    assert summary["labels_only_from_epoch"] == 2
    fresh = Distiller(_tiny("student", 1), _tiny("teacher", 2), alpha=0.7, temperature=2.0)
    reused = run_again(fresh)
    assert reused == summary and fresh.alpha_in_use() == 0.7  # the phase alone does not say
    fresh.take_facts(reused)
    assert fresh.alpha_in_use() == 1.0 and int(fresh.labels_only_from_epoch.numpy()) == 2
    never = Distiller(_tiny("student", 1), _tiny("teacher", 2), alpha=0.7, temperature=2.0)
    never.take_facts({**summary, "labels_only_from_epoch": 0})
    assert never.alpha_in_use() == 0.7
