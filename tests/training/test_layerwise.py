"""Layer-wise learning rates: which multiplier each backbone layer gets, and an optimizer whose
scaled step is exactly AdamW at the scaled rate."""
import numpy as np
import pytest
import tensorflow as tf

from stages.common.models.architectures import build_student
from stages.common.training.layerwise import LayerwiseAdamW, layerwise_multipliers


def test_each_block_trains_at_the_decay_to_its_depth_below_the_classifier():
    model = build_student(3, input_size=32, dropout=0.0)
    multipliers = layerwise_multipliers(model, 0.5)
    # 23 groups: stem, block0 ... block20, head (the conv before the pooling)
    assert multipliers["head_conv/kernel:0"] == 0.5
    assert multipliers["head_bn/gamma:0"] == 0.5
    assert multipliers["block20_project_conv/kernel:0"] == 0.25
    assert multipliers["block19_dwconv/depthwise_kernel:0"] == 0.125
    assert multipliers["block0_dwconv/depthwise_kernel:0"] == 0.5 ** 22
    assert multipliers["stem_conv/kernel:0"] == 0.5 ** 23
    assert not [name for name in multipliers if name.startswith("logits")]  # full rate
    assert set(layerwise_multipliers(model, 1.0).values()) == {1.0}
    with pytest.raises(ValueError):
        layerwise_multipliers(model, 0.0)


def _two_layers():
    tf.keras.utils.set_random_seed(2)
    inputs = tf.keras.Input((4,))
    hidden = tf.keras.layers.Dense(5, activation="relu", name="low")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="top")(hidden))


def test_a_scaled_step_is_adamw_at_the_scaled_rate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = (rng.random((16, 2)) < 0.5).astype(np.float32)
    loss = tf.keras.losses.BinaryCrossentropy(from_logits=True)

    def train(model, apply):
        for step in range(6):
            batch = slice(4 * (step % 4), 4 * (step % 4) + 4)
            with tf.GradientTape() as tape:
                value = loss(y[batch], model(x[batch], training=True))
            apply(tape.gradient(value, model.trainable_variables), model.trainable_variables)
        return model.get_weights()

    layerwise = _two_layers()
    optimizer = LayerwiseAdamW({"low/kernel:0": 0.3, "low/bias:0": 0.3}, learning_rate=0.05,
                               weight_decay=0.2)
    got = train(layerwise, lambda grads, variables: optimizer.apply_gradients(
        zip(grads, variables)))

    reference = _two_layers()
    low = tf.keras.optimizers.AdamW(learning_rate=0.05 * 0.3, weight_decay=0.2)
    top = tf.keras.optimizers.AdamW(learning_rate=0.05, weight_decay=0.2)

    def apply_both(grads, variables):
        low.apply_gradients(zip(grads[:2], variables[:2]))
        top.apply_gradients(zip(grads[2:], variables[2:]))

    wanted = train(reference, apply_both)
    for name, a, b in zip(("low kernel", "low bias", "top kernel", "top bias"), got, wanted):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=name)
    plain = tf.keras.optimizers.AdamW(learning_rate=0.05, weight_decay=0.2)
    unscaled = train(_two_layers(), lambda grads, variables: plain.apply_gradients(
        zip(grads, variables)))
    assert not np.allclose(got[0], unscaled[0], rtol=1e-3)  # the multiplier made a difference


def test_a_phase_with_a_layer_decay_trains_with_layerwise_rates(tmp_path):
    from stages.common.training.phases import Phase, run_phase
    from stages.common.training.resume import ResumeState

    inputs = tf.keras.Input((3,))  # two "blocks" under the classifier, named as a Lite model's
    hidden = tf.keras.layers.Dense(4, name="stem_dense")(inputs)
    hidden = tf.keras.layers.Dense(4, name="block0_dense")(hidden)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="logits")(hidden))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    y = (rng.random((4, 2)) < 0.5).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    for decay, layerwise in ((1.0, False), (0.7, True)):
        phase = Phase(f"p{decay}", 1, 1e-3, 0.0, lambda: None, model,
                      tf.keras.losses.BinaryCrossentropy(from_logits=True), lr_layer_decay=decay)
        run_phase(phase, model, data, data, data.map(lambda a, b: a), y,
                  ResumeState(tmp_path / str(decay), "key"), None, "t")
        assert isinstance(model.optimizer, LayerwiseAdamW) is layerwise
    assert model.optimizer.get_config()["multipliers"] == pytest.approx(
        {"stem_dense/kernel:0": 0.49, "stem_dense/bias:0": 0.49,
         "block0_dense/kernel:0": 0.7, "block0_dense/bias:0": 0.7})
