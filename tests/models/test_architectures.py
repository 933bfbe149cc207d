"""Model construction, parameter counts, QAT-compatibility of the student, freezing."""
import math

import numpy as np
import pytest
import tensorflow as tf

from stages.common.core.errors import UserError
from stages.common.models.architectures import (
    build_student,
    build_teacher,
    weighted_backbone_layers,
)
from stages.common.models.freezing import set_trainable
from stages.common.models.trained_models import load_trained, save_trained

QAT_ACCEPTED = {"InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "Add",
                "GlobalAveragePooling2D", "Dropout", "Dense"}


def _count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


def test_student_matches_published_lite1_size():
    model = build_student(1000, input_size=240, dropout=0.3)
    assert round(_count(model.trainable_weights) / 1e6, 1) == 5.4  # published: 5.4 M
    assert model.count_params() == 5_470_344  # + BatchNorm moving statistics
    assert model.input_shape == (None, 240, 240, 3) and model.output_shape == (None, 1000)


def test_student_is_flat_and_quantisable():
    model = build_student(7, input_size=96, dropout=0.3)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert kinds <= QAT_ACCEPTED, kinds - QAT_ACCEPTED
    relus = [layer for layer in model.layers if type(layer).__name__ == "ReLU"]
    assert relus and all(float(layer.max_value) == 6.0 for layer in relus)
    depth = sum(1 for layer in model.layers if layer.name.endswith("_dwconv"))
    assert depth == 21  # stages 1, 3, 3, 4, 4, 5, 1 blocks: depth 1.1, first and last fixed
    import tensorflow_model_optimization as tfmot

    quantised = tfmot.quantization.keras.quantize_model(model)
    assert quantised.output_shape == (None, 7)


def test_teacher_is_efficientnet_b3_with_our_head():
    model = build_teacher(
        1000, weights=None, input_size=300, dropout=0.4, architecture="efficientnet_b3"
    )
    assert model.count_params() == 12_320_535  # Keras EfficientNetB3 with its 1000-class top
    assert [layer.name for layer in model.layers[-3:]] == ["avg_pool", "top_dropout", "logits"]
    assert not any(isinstance(layer, tf.keras.Model) for layer in model.layers)  # flat graph


def test_lite2_teacher_is_flat_takes_pixels_and_rebuilds(tmp_path):
    model = build_teacher(4, 96, 0.2, weights=None, architecture="efficientnet_lite2")
    assert model.get_layer("input_scaling").scale == 1 / 128
    depth = sum(1 for layer in model.layers if layer.name.endswith("_dwconv"))
    assert depth == 21  # ceil(1.2 x 2, 2, 3, 3, 4) = 3, 3, 4, 4, 5 (Lite1 at 1.1 has the same)
    assert model.get_layer("head_conv").input_shape[-1] == 352  # 320 * 1.1, rounded to 8
    assert not any(isinstance(layer, tf.keras.Model) for layer in model.layers)
    save_trained(model, tmp_path, "efficientnet_lite2", list("abcd"), 96, 0.2)
    rebuilt, meta = load_trained(tmp_path)
    images = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(rebuilt(images).numpy(), model(images).numpy(), atol=1e-5)
    with pytest.raises(UserError, match="teacher.architecture"):
        build_teacher(4, 96, architecture="efficientnet_lite9", dropout=0.4, weights="imagenet")


def test_teacher_imagenet_offline_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(tf.keras.applications, "EfficientNetB3", offline)
    with pytest.raises(UserError) as caught:
        build_teacher(
            3, input_size=64, weights="imagenet", dropout=0.4, architecture="efficientnet_b3"
        )
    message = str(caught.value)
    assert "teacher.weights" in message and "null" in message and "local" in message
    assert "efficientnet_lite2" in message


@pytest.mark.parametrize("fraction, freeze_bn", [(0.4, True), (0.4, False), (0.3, True)])
def test_freezing_phases(fraction, freeze_bn):
    model = build_student(3, input_size=64, dropout=0.3)
    backbone = weighted_backbone_layers(model)
    assert set_trainable(model, "head") == 0
    assert [layer.name for layer in model.layers if layer.trainable] == [
        "avg_pool", "top_dropout", "logits"]

    count = set_trainable(model, "finetune", fraction, freeze_batchnorm=freeze_bn)
    expected_top = backbone[len(backbone) - math.ceil(fraction * len(backbone)):]
    expected = [layer for layer in expected_top if not (
        freeze_bn and isinstance(layer, tf.keras.layers.BatchNormalization))]
    assert count == len(expected)
    trainable_backbone = [layer for layer in backbone if layer.trainable]
    assert trainable_backbone == expected
    assert not model.get_layer("stem_conv").trainable
    assert model.get_layer("head_conv").trainable
    assert model.get_layer("head_bn").trainable is (not freeze_bn)


def test_save_and_rebuild_gives_the_same_outputs(tmp_path):
    model = build_student(4, input_size=64, dropout=0.2)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    save_trained(model, tmp_path / "student", "efficientnet_lite1", ["a", "b", "c", "d"], 64, 0.2)
    again, meta = load_trained(tmp_path / "student")
    assert meta["classes"] == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(model(images, training=False).numpy(),
                                  again(images, training=False).numpy())
    with pytest.raises(UserError, match="run the stage that trains it first"):
        load_trained(tmp_path / "absent")


def test_qat_activation_ranges_are_calibrated_from_the_float_model():
    from stages.common.models.fake_quant import calibrate_activation_ranges, quantize_student

    student = build_student(3, input_size=64, dropout=0.3)
    qat_model = quantize_student(student)
    batches = [np.random.default_rng(i).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
               for i in range(2)]
    count = calibrate_activation_ranges(student, qat_model, batches)
    variables = {v.name: float(np.squeeze(v.numpy())) for v in qat_model.weights
                 if v.name.endswith(("_min:0", "_max:0")) and np.size(v.numpy()) == 1}
    assert count == 80  # 79 layer outputs and the logits' post-activation
    for name in ("block3_project_bn", "block5_add", "logits"):
        probe = tf.keras.Model(student.input, student.get_layer(name).output)
        outputs = np.concatenate([probe(batch).numpy() for batch in batches])
        kind = "post_activation" if name == "logits" else "output"
        assert variables[f"quant_{name}/{kind}_min:0"] == pytest.approx(min(outputs.min(), 0.0))
        assert variables[f"quant_{name}/{kind}_max:0"] == pytest.approx(max(outputs.max(), 0.0))


def test_a_local_weights_file_must_fill_the_whole_backbone(tmp_path, capsys):
    """student.weights / teacher.weights: a file that fits nothing, only part of the backbone, or
    is no weights file at all is an error that counts what it would load, unless the section's
    partial_weights allows part of it."""
    from stages.common.models.architectures import load_student_weights

    source = build_student(3, input_size=64, dropout=0.0)
    own = tmp_path / "lite1.h5"
    source.save_weights(own)
    lite2 = tmp_path / "lite2.h5"
    build_student(3, input_size=64, variant="lite2", dropout=0.3).save_weights(lite2)
    other = tmp_path / "other.h5"
    tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)]).save_weights(other)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    total = len(weighted_backbone_layers(source))

    target = build_student(5, input_size=96, dropout=0.3)
    load_student_weights(target, str(own))  # same architecture, other size and classes: all fit
    for ours, theirs in zip(target.get_layer("block7_dwconv").get_weights(),
                            source.get_layer("block7_dwconv").get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(UserError, match=rf"student.weights: {other} fills 0 of the {total} "):
        load_student_weights(build_student(5, input_size=64, dropout=0.3), str(other), partial=True)
    with pytest.raises(UserError, match=rf"{empty}: not a Keras weights .h5 file"):
        load_student_weights(build_student(5, input_size=64, dropout=0.3), str(empty))
    with pytest.raises(UserError, match=rf"{lite2} fills \d+ of the {total} .*"
                                        "student.partial_weights: true") as error:
        load_student_weights(build_student(5, input_size=64, dropout=0.3), str(lite2))
    loaded = int(str(error.value).split(" fills ")[1].split()[0])
    assert 0 < loaded < total
    partly = build_student(5, input_size=64, dropout=0.3)
    load_student_weights(partly, str(lite2), partial=True)
    assert f"filled {loaded} of {total}" in capsys.readouterr().out
    with pytest.raises(UserError, match=rf"teacher.weights: {other} fills 0 of"):
        build_teacher(3, 64, 0.0, str(other), "efficientnet_lite2")


def test_max_pooling_head_saves_rebuilds_quantises_and_converts(tmp_path):
    """pooling: max goes through every step a student goes through: the head layer is the
    head for freezing, model.json carries it, QAT wraps it, and the INT8 model computes it."""
    from stages.common.models.fake_quant import (
        quantize_student,
        rebuild_qat_student,
        save_qat_weights,
    )
    from stages.common.quantization.int8_export import export_int8
    from stages.common.quantization.int8_runtime import Int8Model

    model = build_student(3, input_size=64, dropout=0.0, pooling="max")
    assert [layer.name for layer in model.layers[-3:]] == ["max_pool", "top_dropout", "logits"]
    set_trainable(model, "head")
    assert [layer.name for layer in model.layers if layer.trainable] == [
        "max_pool", "top_dropout", "logits"]
    images = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    average = build_student(3, input_size=64, dropout=0.0)
    average.set_weights(model.get_weights())  # same weights, only the pooling differs
    assert not np.allclose(average(images).numpy(), model(images).numpy())
    save_trained(model, tmp_path / "student", "efficientnet_lite1", ["a", "b", "c"], 64, 0.0,
                 "max")
    again, meta = load_trained(tmp_path / "student")
    assert meta["pooling"] == "max"
    np.testing.assert_array_equal(model(images).numpy(), again(images).numpy())
    qat_model = quantize_student(again)
    save_qat_weights(qat_model, tmp_path)
    rebuilt = rebuild_qat_student(3, 64, 0.0, tmp_path, "max")
    np.testing.assert_allclose(rebuilt(images).numpy(), qat_model(images).numpy(), atol=1e-5)
    pixels = np.random.default_rng(1).integers(0, 256, (8, 64, 64, 3)).astype(np.uint8)
    export_int8(rebuilt, pixels, tmp_path / "model.tflite")
    int8 = Int8Model.load(tmp_path / "model.tflite")
    assert any("MAX" in op for op in int8.operators()), int8.operators()


def test_a_model_json_written_before_pooling_was_a_choice_rebuilds_with_average(tmp_path):
    import json

    model = build_student(2, input_size=64, dropout=0.0)
    save_trained(model, tmp_path / "student", "efficientnet_lite1", ["a", "b"], 64, 0.0)
    meta_file = tmp_path / "student" / "model.json"
    old = {k: v for k, v in json.loads(meta_file.read_text()).items() if k != "pooling"}
    meta_file.write_text(json.dumps(old))
    again, meta = load_trained(tmp_path / "student")
    assert meta["pooling"] == "avg" and again.get_layer("avg_pool")
    meta_file.write_text(json.dumps({**old, "pooling": "median"}))
    with pytest.raises(UserError, match="pooling 'median' is not one of avg, max"):
        load_trained(tmp_path / "student")


@pytest.mark.parametrize("weights, train_batchnorm, bn_trains", [
    ("imagenet", False, False),  # the seed's: pretrained statistics kept
    ("imagenet", True, True),  # a domain far from ImageNet: they adapt
    (None, False, True),  # a random backbone has no statistics worth keeping
])
def test_the_schedule_trains_batchnorm_as_the_params_say(weights, train_batchnorm, bn_trains):
    from dataclasses import replace

    from stages.common.core.params import load_params
    from stages.common.training.driver import HeadData, TwoPhases

    config = replace(load_params().student, weights=weights, train_batchnorm=train_batchnorm,
                     unfreeze_fraction=1.0)
    model = build_student(3, input_size=64, dropout=0.3)
    schedule = TwoPhases.of(model, config, HeadData(None, None), model, (None, None))
    finetune, _ = schedule.phases[1]
    finetune.configure()
    assert model.get_layer("stem_bn").trainable is bn_trains
    assert model.get_layer("head_bn").trainable is bn_trains
    assert model.get_layer("stem_conv").trainable


def test_the_phases_average_weights_and_scale_rates_as_the_params_say():
    from dataclasses import replace

    from stages.common.core.params import load_params
    from stages.common.training.driver import HeadData, TwoPhases

    model = build_student(3, input_size=64, dropout=0.3)
    for decay in (0.0, 0.95):
        config = replace(load_params().student, ema_decay=decay)
        schedule = TwoPhases.of(model, config, HeadData(None, None), model, (None, None))
        assert [phase.ema_decay for phase, _ in schedule.phases] == [decay, decay]
    # layer-wise rates in the fine-tune phase only: the head phase trains the classifier alone
    config = replace(load_params().student, lr_layer_decay=0.8)
    schedule = TwoPhases.of(model, config, HeadData(None, None), model, (None, None))
    assert [phase.lr_layer_decay for phase, _ in schedule.phases] == [1.0, 0.8]


def test_the_head_on_cached_features_trains_as_the_frozen_model_does():
    """One epoch of the head phase, two ways from the same weights and batches: the whole model
    with its backbone frozen, and the head alone on the backbone's features computed once. The
    head's weights must end the same (the head phase on cached features is exact)."""
    from stages.common.models.freezing import head_on_features, set_trainable

    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, size=(8, 32, 32, 3)).astype(np.float32)
    targets = (rng.uniform(size=(8, 3)) < 0.5).astype(np.float32)

    def head_phase_model():
        tf.keras.utils.set_random_seed(5)
        model = build_student(3, input_size=32, dropout=0.0)
        set_trainable(model, "head")
        return model

    def fit(model, inputs):
        model.compile(optimizer=tf.keras.optimizers.SGD(0.5),
                      loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
        model.fit(tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(4), epochs=1,
                  verbose=0)

    whole = head_phase_model()
    fit(whole, images)
    model = head_phase_model()
    extractor, head = head_on_features(model, "student.head_feature_passes")
    before = model.get_layer("logits").get_weights()
    fit(head, extractor(images, training=False).numpy())
    after = model.get_layer("logits").get_weights()  # the head model trained the model's layer
    assert not np.allclose(before[0], after[0])
    for cached, direct in zip(after, whole.get_layer("logits").get_weights()):
        np.testing.assert_allclose(cached, direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(head(extractor(images)).numpy(), model(images).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_a_backbone_with_stochastic_depth_cannot_train_its_head_on_cached_features():
    from stages.common.models.freezing import head_on_features

    teacher = build_teacher(3, 32, 0.3, None, "efficientnet_b0")
    with pytest.raises(UserError, match=r"teacher.head_feature_passes: the head cannot train on "
                                        r"cached features of efficientnet_b0_teacher: its "
                                        r"backbone drops blocks at training time"):
        head_on_features(teacher, "teacher.head_feature_passes")
