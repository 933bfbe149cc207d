"""The offline ImageNet import of EfficientNet-Lite1 into our Keras student."""
import importlib.util

import numpy as np
import pytest

from stages.common.errors import UserError
from stages.common.models import build_student, load_student_weights
from stages.common.preprocessing import letterbox, normalize_student
from stages.common.pretrained import (installed_weights_file, keras_weights_from_torch,
                                      load_imagenet_student, read_legacy_torch_state_dict)

CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def state():
    return read_legacy_torch_state_dict(installed_weights_file())


@pytest.fixture(scope="module")
def imagenet_student(state):
    model = build_student(1000)
    load_imagenet_student(model, state)
    return model


def _student_input(image):
    return normalize_student(letterbox(image, 240))[None]


def test_state_dict_is_read_completely(state):
    assert len(state) == 386
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) == 5_470_344


def test_imagenet_student_recognises_a_cat_and_a_coffee(imagenet_student):
    from skimage import data

    for image, expected in ((data.chelsea(), CATS), (data.coffee(), COFFEE)):
        logits = imagenet_student(_student_input(image), training=False).numpy()[0]
        top5 = set(np.argsort(-logits)[:5].tolist())
        assert top5 & expected, (top5, expected)


def test_import_is_strict(state):
    model = build_student(1000, input_size=64)
    extra = dict(state, **{"_blocks.99._depthwise_conv.weight": np.zeros((1, 1, 3, 3), np.float32)})
    with pytest.raises(UserError, match="match no student layer"):
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
    with pytest.raises(UserError, match="import_student_weights"):
        load_student_weights(model, "imagenet", tmp_path / "absent.h5")


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
