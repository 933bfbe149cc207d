"""The offline ImageNet import of EfficientNet-Lite1 (student) and Lite2 (teacher) into our Keras graphs."""
import importlib.util

import numpy as np
import pytest

from stages.common.core.errors import UserError
from stages.common.models.architectures import build_student, build_teacher, load_student_weights
from stages.common.data.preprocessing import letterbox, normalize_student
from stages.common.models.pretrained import (installed_weights_file, keras_weights_from_torch,
                                             load_imagenet_lite, read_legacy_torch_state_dict)

CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def state():
    return read_legacy_torch_state_dict(installed_weights_file())


@pytest.fixture(scope="module")
def imagenet_student(state):
    model = build_student(1000)
    load_imagenet_lite(model, state)
    return model


def _student_input(image):
    return normalize_student(letterbox(image, 240))[None]


def test_state_dict_is_read_completely(state):
    assert len(state) == 386
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) == 5_470_344


def test_imagenet_student_recognises_a_cat_and_a_coffee(imagenet_student):
    _recognises_a_cat_and_a_coffee(imagenet_student, 240)


def test_import_is_strict(state):
    model = build_student(1000, input_size=64)
    extra = dict(state, **{"_blocks.99._depthwise_conv.weight": np.zeros((1, 1, 3, 3), np.float32)})
    with pytest.raises(UserError, match="match no layer of efficientnet_lite1"):
        keras_weights_from_torch(model, extra, include_classifier=True)
    missing = {k: v for k, v in state.items() if k != "_blocks.3._bn1.running_var"}
    with pytest.raises(UserError, match="missing tensor"):
        keras_weights_from_torch(model, missing, include_classifier=True)
    wrong = dict(state, **{"_conv_head.weight": np.zeros((1280, 321, 1, 1), np.float32)})
    with pytest.raises(UserError, match="expects"):
        keras_weights_from_torch(model, wrong, include_classifier=True)


def test_student_backbone_from_converted_file(imagenet_student, tmp_path):
    converted = tmp_path / "lite1.h5"
    imagenet_student.save_weights(converted)
    model = build_student(5, input_size=96)
    load_student_weights(model, "imagenet", converted)
    for name in ("stem_conv", "block7_dwconv", "head_bn"):
        for ours, theirs in zip(model.get_layer(name).get_weights(),
                                imagenet_student.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(UserError, match="import_imagenet_weights"):
        load_student_weights(model, "imagenet", tmp_path / "absent.h5")


def _recognises_a_cat_and_a_coffee(model, size, pixel_input=False):
    from skimage import data

    for image, expected in ((data.chelsea(), CATS), (data.coffee(), COFFEE)):
        pixels = letterbox(image, size)
        model_input = pixels[None].astype(np.float32) if pixel_input else normalize_student(pixels)[None]
        top5 = set(np.argsort(-model(model_input, training=False).numpy()[0])[:5].tolist())
        assert top5 & expected, (top5, expected)


def test_lite2_teacher_from_imagenet_recognises_a_cat_and_a_coffee(tmp_path):
    """The Lite2 teacher takes [0, 255] pixels like the Keras teachers; its ImageNet weights come
    through the same strict import as the student's, at Lite2's width and depth."""
    lite2 = build_student(1000, input_size=260, dropout=0.0, variant="lite2")
    state = read_legacy_torch_state_dict(installed_weights_file("lite2"))
    assert sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) \
        == lite2.count_params() == 6_150_168
    load_imagenet_lite(lite2, state, "lite2")
    with pytest.raises(UserError, match="has shape"):  # Lite1's tensors do not fit Lite2
        load_imagenet_lite(build_student(1000, input_size=64, variant="lite2"),
                           read_legacy_torch_state_dict(installed_weights_file()), "lite2")
    lite2.save_weights(tmp_path / "efficientnet_lite2_imagenet.h5")
    teacher = build_teacher(1000, 260, 0.0, "imagenet", "efficientnet_lite2", pretrained_dir=tmp_path)
    classifier = teacher.get_layer("logits")
    classifier.set_weights(lite2.get_layer("logits").get_weights())  # the teacher's head is new
    _recognises_a_cat_and_a_coffee(teacher, 260, pixel_input=True)
    with pytest.raises(UserError, match="import_imagenet_weights"):
        build_teacher(3, 64, 0.0, "imagenet", "efficientnet_lite2", pretrained_dir=tmp_path / "no")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None
                    or importlib.util.find_spec("efficientnet_lite_pytorch") is None,
                    reason="PyTorch and efficientnet-lite-pytorch are not installed here")
def test_logits_match_the_pytorch_reference(imagenet_student):
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from skimage import data

    reference = EfficientNet.from_pretrained("efficientnet-lite1", weights_path=str(
        installed_weights_file())).eval()
    image = _student_input(data.chelsea())
    with torch.no_grad():
        theirs = reference(torch.from_numpy(image.transpose(0, 3, 1, 2).copy())).numpy()
    ours = imagenet_student(image, training=False).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
