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


def hard_loss(labels, student_logits, label_smoothing: float = 0.0):
    """With label smoothing s, targets are y (1 - s) + s / 2, as Keras' BinaryCrossentropy."""
    labels = tf.cast(labels, student_logits.dtype)
    if label_smoothing:
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=student_logits)
    )


def soft_loss(student_logits, teacher_logits, temperature: float):
    soft_targets = tf.sigmoid(tf.cast(teacher_logits, student_logits.dtype) / temperature)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=soft_targets, logits=student_logits / temperature))


def distillation_terms(labels, student_logits, teacher_logits, alpha: float, temperature: float,
                       label_smoothing: float = 0.0):
    """(L, L_hard, L_soft): the Distiller minimises L and reports all three."""
    hard = hard_loss(labels, student_logits, label_smoothing)
    soft = soft_loss(student_logits, teacher_logits, temperature)
    return alpha * hard + (1.0 - alpha) * temperature ** 2 * soft, hard, soft


class Distiller(keras.Model):
    """Student trained on ``alpha * L_hard + (1 - alpha) * T^2 * L_soft`` against a frozen teacher.

    Inputs are ``(student_images, teacher_images)``: the same augmented image through each
    model's own letterbox size and normalisation. Only the student's variables are updated; the
    teacher runs in inference mode. ``call`` returns the student's logits. Instead of teacher
    images, the second input may be ``{"teacher_logits": logits}`` computed beforehand, as for
    the un-augmented validation images, whose teacher outputs never change.
    """

    def __init__(self, student: keras.Model, teacher: keras.Model, alpha: float,
                 temperature: float, label_smoothing: float = 0.0):
        super().__init__(name="distiller")
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.label_smoothing = float(label_smoothing)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_tracker = keras.metrics.Mean(name="hard_loss")
        self.soft_tracker = keras.metrics.Mean(name="soft_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.hard_tracker, self.soft_tracker]

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
