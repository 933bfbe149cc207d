"""Multi-label distillation (seed: L = alpha * L_hard + (1 - alpha) * T^2 * L_soft), and the
Distiller that trains a student with it against a frozen teacher.

Multi-label, so both terms are per-class sigmoid binary cross-entropies averaged over classes
and batch, computed from logits for numerical stability:
    L_hard = BCE(y, sigmoid(z_s))
    L_soft = BCE(sigmoid(z_t / T), sigmoid(z_s / T))
The T^2 factor keeps the soft term's gradient scale independent of T (Hinton et al.).
"""
from __future__ import annotations

import tensorflow as tf

from stages.common.data.input_pipeline import TEACHER_LOGITS

keras = tf.keras


def hard_loss(labels, student_logits, label_smoothing: float = 0.0, image_weights=None):
    """With label smoothing s, targets are y (1 - s) + s / 2, as Keras' BinaryCrossentropy.
    ``image_weights`` (N x 1, 0 or 1): an image of weight 0 adds nothing, the mean is still
    over the whole batch."""
    labels = tf.cast(labels, student_logits.dtype)
    if label_smoothing:
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=student_logits)
    if image_weights is not None:
        losses = losses * tf.cast(image_weights, losses.dtype)
    return tf.reduce_mean(losses)


def soft_loss(student_logits, teacher_logits, temperature: float):
    soft_targets = tf.sigmoid(tf.cast(teacher_logits, student_logits.dtype) / temperature)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=soft_targets, logits=student_logits / temperature))


def distillation_terms(labels, student_logits, teacher_logits, alpha: float, temperature: float,
                       label_smoothing: float = 0.0):
    """(L, L_hard, L_soft): the Distiller minimises L and reports all three.

    An image whose targets are NaN has no labels (``tfrecord_shards.Shards.records`` with
    ``unlabelled``): its hard target is the teacher's sigmoid on it, as long as the teacher is
    in use; once the loss is the labels' alone (alpha 1) it has no target and adds nothing."""
    labels = tf.cast(labels, student_logits.dtype)
    unlabelled = tf.reduce_any(tf.math.is_nan(labels), axis=-1, keepdims=True)
    labels = tf.where(unlabelled, tf.sigmoid(tf.cast(teacher_logits, labels.dtype)), labels)
    labels_alone = tf.cast(alpha, tf.float32) >= 1.0  # a float or the Distiller's variable
    image_weights = tf.where(unlabelled & labels_alone, 0.0, 1.0)
    hard = hard_loss(labels, student_logits, label_smoothing, image_weights)
    soft = soft_loss(student_logits, teacher_logits, temperature)
    alpha = tf.cast(alpha, hard.dtype)
    return alpha * hard + (1.0 - alpha) * temperature ** 2 * soft, hard, soft


class Distiller(keras.Model):
    """Student trained on ``alpha * L_hard + (1 - alpha) * T^2 * L_soft`` against a frozen teacher.

    Inputs are ``(student_images, teacher_images)``: the same augmented image through each
    model's own letterbox size and normalisation. Only the student's variables are updated; the
    teacher runs in inference mode. ``call`` returns the student's logits. Instead of teacher
    images, the second input may be ``{"teacher_logits": logits}`` computed beforehand, as for
    the un-augmented validation images, whose teacher outputs never change.

    ``alpha`` is a variable, so that ``use_labels_only`` can drop the teacher between epochs
    without a new training graph; checkpoints of the Distiller (Keras' BackupAndRestore) keep it,
    so a resumed run goes on with the weight it had reached.
    """

    def __init__(self, student: keras.Model, teacher: keras.Model, alpha: float,
                 temperature: float, label_smoothing: float = 0.0):
        super().__init__(name="distiller")
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        # float64: the value reads back exactly as configured (float32 turns 0.7 into
        # 0.699999988), which is what the metrics record and QAT compares with the params
        self.alpha = tf.Variable(float(alpha), trainable=False, dtype=tf.float64,
                                 name="distillation_alpha")
        # the 1-based epoch of its fit from which the loss was the labels' alone; 0: never
        self.labels_only_from_epoch = tf.Variable(0, trainable=False, dtype=tf.int64,
                                                  name="labels_only_from_epoch")
        self.temperature = float(temperature)
        self.label_smoothing = float(label_smoothing)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_tracker = keras.metrics.Mean(name="hard_loss")
        self.soft_tracker = keras.metrics.Mean(name="soft_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.hard_tracker, self.soft_tracker]

    def use_labels_only(self, from_epoch: int) -> None:
        """From the next step on (epoch ``from_epoch``, 1-based), the loss is the hard term alone
        (alpha 1)."""
        self.alpha.assign(1.0)
        self.labels_only_from_epoch.assign(from_epoch)

    def facts(self) -> dict:
        """What a finished phase keeps beside the student's weights (``Phase.summary_facts``)."""
        return {"labels_only_from_epoch": int(self.labels_only_from_epoch.numpy())}

    def take_facts(self, summary: dict) -> None:
        """The fallback of a phase finished by an earlier run, whose summary is reused."""
        if summary.get("labels_only_from_epoch", 0) > 0:
            self.use_labels_only(from_epoch=summary["labels_only_from_epoch"])

    def alpha_in_use(self) -> float:
        """The weight of the hard term now."""
        return float(self.alpha.numpy())

    def call(self, inputs, training=False):
        return self.student(inputs[0], training=training)

    def _teacher_logits(self, teacher_input):
        if isinstance(teacher_input, dict):
            return teacher_input[TEACHER_LOGITS]
        return self.teacher(teacher_input, training=False)

    def _update(self, labels, student_logits, teacher_logits):
        return distillation_terms(labels, student_logits, teacher_logits, self.alpha,
                                  self.temperature, self.label_smoothing)

    def validation_terms(self, labels, student_logits, teacher_input):
        """(L, L_hard, L_soft) of one batch, as test_step computes them."""
        return self._update(labels, student_logits, self._teacher_logits(teacher_input))

    def _record(self, total, hard, soft):
        self.loss_tracker.update_state(total)
        self.hard_tracker.update_state(hard)
        self.soft_tracker.update_state(soft)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        (student_images, teacher_input), labels = data
        teacher_logits = self._teacher_logits(teacher_input)
        with tf.GradientTape() as tape:
            student_logits = self.student(student_images, training=True)
            total, hard, soft = self._update(labels, student_logits, teacher_logits)
            regularised = total + tf.add_n(self.student.losses) if self.student.losses else total
            # Each replica sees 1/N of the global batch and the gradients are summed across
            # replicas, so the per-replica mean loss is divided by N (as Keras does for
            # compiled losses).
            regularised /= tf.distribute.get_strategy().num_replicas_in_sync
        # minimize() applies loss scaling when mixed precision wrapped the optimizer
        self.optimizer.minimize(regularised, self.student.trainable_variables, tape=tape)
        return self._record(total, hard, soft)

    def test_step(self, data):
        (student_images, teacher_input), labels = data
        teacher_logits = self._teacher_logits(teacher_input)
        student_logits = self.student(student_images, training=False)
        return self._record(*self._update(labels, student_logits, teacher_logits))


class LabelsOnlyOnceCaughtUp(keras.callbacks.Callback):
    """Drops the teacher for the rest of the phase once the student's val macro-F1 at 0.5 (the
    epoch's logs, filled by ``phases.Validation``, which must come first) reaches
    ``teacher_f1_macro``: from there the teacher knows no more than the student on val, and its
    soft targets can only hold the student at its level. Logs each epoch's alpha."""

    def __init__(self, distiller: Distiller, teacher_f1_macro: float):
        super().__init__()
        self.distiller, self.teacher_f1_macro = distiller, float(teacher_f1_macro)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        alpha = self.distiller.alpha_in_use()
        logs["distillation_alpha"] = alpha  # the weight this epoch trained with
        if alpha < 1.0 and logs["val_f1_macro"] >= self.teacher_f1_macro:
            self.distiller.use_labels_only(from_epoch=epoch + 2)
            print(f"distillation: the student's val macro-F1 {logs['val_f1_macro']:.4f} has "
                  f"reached the teacher's {self.teacher_f1_macro:.4f} at fine-tune epoch "
                  f"{epoch + 1}; the epochs left train on the labels alone "
                  "(distillation.if_teacher_not_better: labels)", flush=True)
