"""Importing ``stages`` first selects Keras 2 (tf_keras) before any test imports TensorFlow."""
import stages  # noqa: F401
