"""Pipeline stages (one script each) and the code they share (``stages.common``).

This is the one place every stage, the CLI and the tests go through before TensorFlow is
imported. tensorflow-model-optimization (QAT) only works with Keras 2, so the legacy Keras
(``tf_keras``) must be selected before the first ``import tensorflow`` of the process; once
``tf.keras`` has been touched the choice cannot be changed.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
