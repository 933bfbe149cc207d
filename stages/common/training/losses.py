"""Multi-label distillation loss (seed: L = alpha * L_hard + (1 - alpha) * T^2 * L_soft).

Multi-label, so both terms are per-class sigmoid binary cross-entropies averaged over classes
and batch, computed from logits for numerical stability:
    L_hard = BCE(y, sigmoid(z_s))
    L_soft = BCE(sigmoid(z_t / T), sigmoid(z_s / T))
The T^2 factor keeps the soft term's gradient scale independent of T (Hinton et al.).
"""
import tensorflow as tf


def hard_loss(labels, student_logits):
    labels = tf.cast(labels, student_logits.dtype)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=student_logits))


def soft_loss(student_logits, teacher_logits, temperature: float):
    soft_targets = tf.sigmoid(tf.cast(teacher_logits, student_logits.dtype) / temperature)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=soft_targets, logits=student_logits / temperature))


def distillation_terms(labels, student_logits, teacher_logits, alpha: float, temperature: float):
    """(L, L_hard, L_soft): the Distiller minimises L and reports all three."""
    hard = hard_loss(labels, student_logits)
    soft = soft_loss(student_logits, teacher_logits, temperature)
    return alpha * hard + (1.0 - alpha) * temperature ** 2 * soft, hard, soft
