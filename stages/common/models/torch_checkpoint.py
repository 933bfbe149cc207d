"""Reading a legacy PyTorch checkpoint (a ``.pth`` state dict) without PyTorch, and without
running anything it holds: the pickles are read by unpicklers that build plain data and tensor
placeholders only, so a crafted file is refused, never executed; each tensor's bytes are then
read from the storages that follow. The layout is described in ``pretrained``."""
from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "DoubleStorage": np.float64,
                   "IntStorage": np.int32, "HalfStorage": np.float16}


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
