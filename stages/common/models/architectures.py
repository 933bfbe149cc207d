"""Teacher (EfficientNet-B0..B7 or EfficientNet-Lite2) and student (EfficientNet-Lite1) as flat
Keras 2 functional graphs, and their backbones' starting weights. All models end in the same
head: global average pooling, dropout, one dense logit per class (no sigmoid in the graph: the
losses and the exported INT8 model work on logits).

The student follows EfficientNet-Lite (tensorflow/tpu, ``efficientnet_lite_builder``): no
squeeze-and-excitation, ReLU6 everywhere, stem (32 filters) and head (1280 filters) not scaled,
first and last stage repeats not scaled; Lite1 scales width by 1.0 and depth by 1.1 at 240 px,
Lite2 width by 1.1 and depth by 1.2 at 260 px.
It is written layer by layer (Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, Add,
GlobalAveragePooling2D, Dropout, Dense) with no nested model and no Lambda, so that
``tfmot.quantization.keras.quantize_model`` accepts it whole. Its input is the normalised image
``(x - 127) / 128``, computed before the model (see ``preprocessing``): a normalisation layer
inside the model would spoil the INT8 input quantisation. Stochastic depth (drop-connect) of the
original is left out: it has no Keras layer that QAT accepts.

Every teacher takes RGB in [0, 255]: keras.applications' EfficientNets normalise inside, and the
Lite2 teacher starts with a Rescaling layer to ``(x - 127) / 128`` (a teacher is never quantised,
so the layer costs nothing). The data pipeline therefore feeds every teacher the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from stages.common.core import layout
from stages.common.core.errors import UserError
from stages.common.core.params_schema import TEACHER_ARCHITECTURES
from stages.common.data.preprocessing import STUDENT_SCALE, STUDENT_ZERO_POINT

keras = tf.keras
layers = tf.keras.layers

HEAD_LAYER_NAMES = ("avg_pool", "max_pool", "top_dropout", "logits")
POOLINGS = ("avg", "max")
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


# A fresh initializer per layer: one shared unseeded instance gives every layer the same values.
def _conv_initializer():
    return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


def _dense_initializer():
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


@dataclass(frozen=True)
class BlockSpec:
    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


# EfficientNet-B0 stages (tensorflow/tpu ``_DEFAULT_BLOCKS_ARGS``), SE removed for Lite.
BASE_BLOCKS = (
    BlockSpec(1, 3, 1, 1, 32, 16),
    BlockSpec(2, 3, 2, 6, 16, 24),
    BlockSpec(2, 5, 2, 6, 24, 40),
    BlockSpec(3, 3, 2, 6, 40, 80),
    BlockSpec(3, 5, 1, 6, 80, 112),
    BlockSpec(4, 5, 2, 6, 112, 192),
    BlockSpec(1, 3, 1, 6, 192, 320),
)
# (width, depth) multipliers per EfficientNet-Lite variant
# (tensorflow/tpu efficientnet_lite_builder)
LITE_SCALING = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2),
                "lite3": (1.2, 1.4), "lite4": (1.4, 1.8)}
STEM_FILTERS = 32
HEAD_FILTERS = 1280


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    filters *= width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * filters:
        rounded += divisor
    return int(rounded)


def _lite_repeats(stage_index: int, repeats: int, depth: float) -> int:
    if stage_index in (0, len(BASE_BLOCKS) - 1):  # Lite keeps the first and last stage fixed
        return repeats
    return int(math.ceil(depth * repeats))


def _classifier_head(features, num_classes: int, dropout: float, pooling: str = "avg"):
    """``pooling`` avg (the seed's) or max: a small object covers a cell or two of the last
    feature map, which an average over all of them dilutes and a maximum keeps."""
    if pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(features)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(features)
    else:
        raise ValueError(f"unknown pooling {pooling!r}")
    x = layers.Dropout(dropout, name="top_dropout")(x)
    # float32 logits even under mixed precision: the losses and the sigmoid need the range
    return layers.Dense(num_classes, kernel_initializer=_dense_initializer(), name="logits",
                        dtype="float32")(x)


def _conv_bn(x, filters, kernel, stride, name, activation=True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      kernel_initializer=_conv_initializer(), name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if activation else x


def _mbconv(x, spec: BlockSpec, filters_in: int, stride: int, index: int, width: float):
    name = f"block{index}"
    shortcut = x
    expanded = filters_in * spec.expand
    if spec.expand != 1:
        x = _conv_bn(x, expanded, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(spec.kernel, strides=stride, padding="same", use_bias=False,
                               depthwise_initializer=_conv_initializer(), name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    filters_out = _round_filters(spec.filters_out, width)
    x = _conv_bn(x, filters_out, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and filters_in == filters_out:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def _lite_backbone(x, variant: str):
    width, depth = LITE_SCALING[variant]
    x = _conv_bn(x, STEM_FILTERS, 3, 2, "stem")  # Lite does not scale the stem or the head
    index = 0
    for stage_index, spec in enumerate(BASE_BLOCKS):
        filters_in = _round_filters(spec.filters_in, width)
        for repeat in range(_lite_repeats(stage_index, spec.repeats, depth)):
            stride = spec.stride if repeat == 0 else 1
            x = _mbconv(x, spec, filters_in, stride, index, width)
            filters_in = _round_filters(spec.filters_out, width)
            index += 1
    return _conv_bn(x, HEAD_FILTERS, 1, 1, "head")


def build_student(num_classes: int, input_size: int, dropout: float, variant: str = "lite1",
                  pooling: str = "avg") -> keras.Model:
    """EfficientNet-Lite (B1 by default) with a multi-label head; input is ``(x - 127) / 128``,
    float32."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    logits = _classifier_head(_lite_backbone(inputs, variant), num_classes, dropout, pooling)
    return keras.Model(inputs, logits, name=f"efficientnet_{variant}")


# The choices are the params schema's (teacher.architecture); the Lite ones are our own graph,
# the others keras.applications'
LITE_TEACHERS = tuple(name for name in TEACHER_ARCHITECTURES if "_lite" in name)


def imagenet_lite_file(variant: str) -> Path:
    """Where stage import_imagenet_weights writes a Lite variant's converted 1000-class weights."""
    return layout.PRETRAINED / f"efficientnet_{variant}_imagenet.h5"


def build_teacher(num_classes: int, input_size: int, dropout: float, weights: str | None,
                  architecture: str, pretrained_dir: Path | None = None,
                  partial_weights: bool = False, pooling: str = "avg") -> keras.Model:
    """A teacher with a multi-label head; input is RGB in [0, 255].

    ``architecture``: ``efficientnet_b0`` .. ``efficientnet_b7`` (keras.applications) or
    ``efficientnet_lite2`` (our Lite graph). ``weights``: ``"imagenet"`` (B0-B7: downloaded once
    and cached by Keras in ~/.keras/models; Lite2: the official weights converted offline by stage
    import_imagenet_weights into ``pretrained_dir``), ``None`` (random initialisation) or the path
    of a weights file (B0-B7: no-top, loaded by Keras, which refuses one that does not fit; Lite2:
    a Lite2 .h5, loaded by layer name, filling the whole backbone unless ``partial_weights``).
    """
    if architecture not in TEACHER_ARCHITECTURES:
        raise UserError(f"teacher.architecture: unknown {architecture!r}; choose one of "
                        f"{', '.join(TEACHER_ARCHITECTURES)}")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    if architecture in LITE_TEACHERS:
        variant = architecture.removeprefix("efficientnet_")
        scaled = layers.Rescaling(1.0 / STUDENT_SCALE, offset=-STUDENT_ZERO_POINT / STUDENT_SCALE,
                                  name="input_scaling")(inputs)
        logits = _classifier_head(_lite_backbone(scaled, variant), num_classes, dropout,
                                  pooling)
        model = keras.Model(inputs, logits, name=f"{architecture}_teacher")
        if weights is not None:
            converted = (pretrained_dir or layout.PRETRAINED) / imagenet_lite_file(variant).name
            load_lite_weights(model, weights, variant, converted, "teacher.weights",
                              partial_weights)
        return model
    application = getattr(keras.applications, "EfficientNet" + architecture[-2:].upper())
    try:
        backbone = application(include_top=False, weights=weights, input_tensor=inputs)
    except Exception as error:  # the download raises several types (URL, HTTP, OS errors)
        if weights == "imagenet":
            raise UserError(
                f"teacher.weights: imagenet: the {architecture} ImageNet weights could not be "
                f"downloaded ({type(error).__name__}: {error}). Without network access set "
                "teacher.architecture to efficientnet_lite2 (ImageNet weights installed with the "
                "requirements), teacher.weights to null (random initialisation) or to the path "
                f"of a local no-top weights file such as {architecture.replace('_', '')}_notop.h5."
            ) from None
        raise UserError(f"teacher.weights: cannot load {weights!r}: {error}") from None
    logits = _classifier_head(backbone.output, num_classes, dropout, pooling)
    return keras.Model(inputs, logits, name=f"{architecture}_teacher")


def is_head(layer) -> bool:
    return layer.name in HEAD_LAYER_NAMES


def weighted_backbone_layers(model: keras.Model) -> list:
    """Backbone layers that own trainable variables, in graph order (fine-tuning unit)."""
    return [layer for layer in model.layers
            if not is_head(layer) and layer.weights
            and not isinstance(layer, (layers.Normalization, layers.Rescaling))]


def weights_file_layers(path: Path) -> dict[str, list[tuple]]:
    """Layer name -> the shapes of its arrays, as a Keras 2 weights .h5 stores them; UserError
    naming the file if it is not one."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            group = file["model_weights"] if "model_weights" in file else file
            layers_found = {}
            for raw in group.attrs["layer_names"]:
                name = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
                weight_names = group[name].attrs["weight_names"]
                layers_found[name] = [tuple(group[name][w].shape) for w in weight_names]
            return layers_found
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise UserError(f"{path}: not a Keras weights .h5 file ({error})") from None


def backbone_fit(model: keras.Model, path: Path) -> tuple[list[str], list[str]]:
    """(layers the file fills, layers it leaves as they are) of ``model``'s weighted backbone,
    under the rule of ``load_weights(by_name=True, skip_mismatch=True)``: a layer loads when
    the file has a layer of its name with arrays of the same shapes."""
    stored = weights_file_layers(path)
    loaded, missing = [], []
    for layer in weighted_backbone_layers(model):
        shapes = [tuple(weight.shape) for weight in layer.weights]
        (loaded if stored.get(layer.name) == shapes else missing).append(layer.name)
    return loaded, missing


def load_lite_weights(model: keras.Model, weights: str, variant: str, converted: Path,
                      key: str, partial: bool = False) -> None:
    """Initialise a Lite model's backbone; its classifier stays freshly initialised.

    ``imagenet``: the converted official weights of ``variant`` (stage import_imagenet_weights),
    copied strictly layer by layer. Any other value: a local weights file, loaded by layer name;
    it must fill every weighted layer of the backbone unless ``partial`` (the section's
    ``partial_weights``) allows fewer, and then at least one.
    """
    if weights == "imagenet":
        from stages.common.models.pretrained import copy_backbone

        if not Path(converted).is_file():
            raise UserError(f"{key}: imagenet: {converted} not found; run "
                            "`dvc repro import_imagenet_weights` first")
        source = build_student(1000, 240, 0.0, variant=variant)  # any size: same weights
        source.load_weights(converted)
        copy_backbone(source, model)
        return
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"{key}: weights file {path} not found (use imagenet, null or the path "
                        f"of an EfficientNet-{variant.capitalize()} weights .h5)")
    loaded, missing = backbone_fit(model, path)
    section = key.split(".")[0]
    if not loaded or (missing and not partial):
        total = len(loaded) + len(missing)
        raise UserError(
            f"{key}: {path} fills {len(loaded)} of the {total} weighted backbone layers of "
            f"{model.name}; missing or of another shape: {', '.join(missing[:8])}"
            f"{', ...' if len(missing) > 8 else ''}. Give weights of EfficientNet-"
            f"{variant.capitalize()} (the file of a model built by this pipeline, or "
            f"import_imagenet_weights' output)"
            + ("" if not loaded else f", or set {section}.partial_weights: true to start the "
                                     "missing layers from random values"))
    try:
        model.load_weights(path, by_name=True, skip_mismatch=True)
    except Exception as error:  # h5py and Keras raise various types for a wrong file
        raise UserError(f"{key}: cannot load weights from {path}: {error}") from None
    if missing:
        print(f"{key}: {path} filled {len(loaded)} of {len(loaded) + len(missing)} weighted "
              f"backbone layers ({section}.partial_weights: true); the others start random")


def load_student_weights(model: keras.Model, weights: str, converted: Path | None = None,
                         partial: bool = False) -> None:
    """The student's backbone from ``student.weights`` (see load_lite_weights)."""
    load_lite_weights(model, weights, "lite1", converted or imagenet_lite_file("lite1"),
                      "student.weights", partial)
