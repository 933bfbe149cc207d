"""Smoke test of the INT8 export (the seed's tests/smoke_tflite.py): contract and fidelity."""
import numpy as np
import pytest

from stages.common.export import check_int8_model, fidelity
from stages.common.int8_runtime import Int8Model
from stages.common.quantization import ExportError, convert_to_float

import tensorflow as tf  # noqa: E402

# INT8 vs the float QAT model on the same images: fake-quantised training simulates the integer
# arithmetic, so the probabilities agree to within a few int8 output steps.
MAX_PROBABILITY_DIFFERENCE = 0.05
MIN_IDENTICAL_DECISIONS = 0.95


def test_export_meets_the_deployment_contract(tiny_int8):
    _, _, path, report = tiny_int8
    assert report["input"] == {"dtype": "uint8", "scale": 1 / 128, "zero_point": 127, "size": 64,
                               "shape": [1, 64, 64, 3]}
    assert report["output"]["dtype"] == "int8" and report["output"]["classes"] == 5
    assert report["output"]["shape"] == [1, 5]
    model = Int8Model.load(path)
    assert model.float_tensors() == []
    assert np.dtype(model.input_dtype) == np.uint8 and np.dtype(model.output_dtype) == np.int8
    assert report["representative_samples"] == 32


def test_int8_matches_the_float_qat_model(tiny_int8):
    qat_model, pixels, path, _ = tiny_int8
    model = Int8Model.load(path)
    targets = np.zeros((len(pixels), 5))
    scores = fidelity(model, qat_model, [pixels], targets, batch_size=16)
    assert scores["max_abs_probability_difference"] <= MAX_PROBABILITY_DIFFERENCE
    assert scores["identical_decisions_at_0.5"] >= MIN_IDENTICAL_DECISIONS


def test_the_signature_is_one_image_as_on_the_phone(tiny_int8):
    """A static batch of 1: no resize before the first run, and nothing to resize for a batch."""
    _, pixels, path, _ = tiny_int8
    model = Int8Model.load(path)
    assert model.input_signature == [1, 64, 64, 3] and model.output_signature == [1, 5]
    together = model.raw_outputs(pixels[:5])
    one_by_one = np.concatenate([model.raw_outputs(pixels[i:i + 1]) for i in range(5)])
    np.testing.assert_array_equal(together, one_by_one)


def test_a_float_model_is_refused_loudly(tmp_path):
    inputs = tf.keras.Input((8, 8, 3))
    outputs = tf.keras.layers.Dense(2)(tf.keras.layers.GlobalAveragePooling2D()(inputs))
    path = tmp_path / "float.tflite"
    path.write_bytes(convert_to_float(tf.keras.Model(inputs, outputs)))
    with pytest.raises(ExportError) as caught:
        check_int8_model(Int8Model.load(path))
    message = str(caught.value)
    assert "input dtype is float32" in message and "output dtype is float32" in message
    # a Keras model converted as it is keeps a dynamic batch, which the phone's config cannot say
    assert "input signature is [-1, 8, 8, 3], not [1, 8, 8, 3]" in message
