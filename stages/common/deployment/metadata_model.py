"""The model for MediaPipe Tasks and the LiteRT Task Library: the shipped INT8 graph with two
float ops after it, and TFLite metadata that names its input, its output and its labels.

MediaPipe's ImageClassifier refuses an int8 output tensor (it takes uint8, float32 or bool), so
``probability_model`` appends DEQUANTIZE and LOGISTIC to the graph: the output becomes float32
sigmoid(scale * (q - zero_point)) per class. Every tensor, buffer and operator of the INT8 model
is kept as it is, so the integer part computes what was evaluated.

``with_metadata`` writes the metadata flatbuffer (the "M001" schema of TFLite metadata,
metadata_schema.fbs in tflite-support and MediaPipe) with flatbuffers' own Builder: the libraries
that write it pin protobuf below 4 (tflite-support) or replace our OpenCV build (mediapipe), and
either would break this environment. labels.txt travels inside the file as the output's
associated file, in a zip archive appended to the flatbuffer, as the metadata format defines.

``score_thresholds`` are the decision thresholds for that float output: the class is predicted
when its score reaches the threshold exactly when the int8 logit reaches its int8 threshold.
"""
from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tflite

from stages.common.quantization.int8_runtime import NEVER, probability_table

METADATA_MODEL_FILE = "model_qat_int8_metadata.tflite"
METADATA_NAME = "TFLITE_METADATA"  # the entry of Model.metadata MediaPipe reads
METADATA_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every field written here is in metadata schema version 1.0.0
INPUT_NAME = "image"
OUTPUT_NAME = "probability"
ALWAYS_SCORE = 0.0  # int8 threshold -128: every score reaches it
NEVER_SCORE = 2.0  # int8 threshold NEVER: no sigmoid reaches it
_ASSOCIATED_LABELS = 2  # AssociatedFileType.TENSOR_AXIS_LABELS
_RGB = 1  # ColorSpaceType.RGB
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2  # ContentProperties union members


class _AlignedBufferT(tflite.BufferT):
    """A buffer whose data starts on a 16-byte boundary, as the schema's force_align asks and
    the converter writes; the generated Pack aligns to 1."""

    def Pack(self, builder):  # noqa: N802 (the generated API's name)
        if self.data is not None:
            builder.Prep(16, len(self.data))  # the data, written next, ends up 16-aligned
        return super().Pack(builder)


def read_model(model: bytes) -> tflite.ModelT:
    return tflite.ModelT.InitFromObj(tflite.Model.GetRootAs(model, 0))


def write_model(model: tflite.ModelT) -> bytes:
    for buffer in model.buffers:
        buffer.__class__ = _AlignedBufferT
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _operator_code(model: tflite.ModelT, builtin: int, version: int) -> int:
    for index, code in enumerate(model.operatorCodes):
        if code.builtinCode == builtin and code.version == version:
            return index
    model.operatorCodes.append(tflite.OperatorCodeT(deprecatedBuiltinCode=min(builtin, 127),
                                                    version=version, builtinCode=builtin))
    return len(model.operatorCodes) - 1


def _float_tensor(model: tflite.ModelT, like: tflite.TensorT, name: str) -> tflite.TensorT:
    model.buffers.append(tflite.BufferT())  # empty, as the converter gives every activation
    return tflite.TensorT(shape=list(like.shape), type=tflite.TensorType.FLOAT32,
                          buffer=len(model.buffers) - 1, name=name.encode(),
                          shapeSignature=None if like.shapeSignature is None
                          else list(like.shapeSignature), hasRank=like.hasRank)


def probability_model(int8_model: bytes) -> bytes:
    """``int8_model`` (one subgraph, one int8 output) with DEQUANTIZE and LOGISTIC appended: its
    output is the float32 probability of each class."""
    model = read_model(int8_model)
    if len(model.subgraphs) != 1 or len(model.subgraphs[0].outputs) != 1:
        raise ValueError("expected one subgraph with one output")
    graph = model.subgraphs[0]
    logits_index = graph.outputs[0]
    if graph.tensors[logits_index].type != tflite.TensorType.INT8:
        raise ValueError("expected an int8 output")
    # DEQUANTIZE's version 2 is the one that takes int8 input
    steps = [(tflite.BuiltinOperator.DEQUANTIZE, 2, "logit"),
             (tflite.BuiltinOperator.LOGISTIC, 1, OUTPUT_NAME)]
    source = logits_index
    for builtin, version, name in steps:
        graph.tensors.append(_float_tensor(model, graph.tensors[logits_index], name))
        target = len(graph.tensors) - 1
        graph.operators.append(tflite.OperatorT(opcodeIndex=_operator_code(model, builtin, version),
                                                inputs=[source], outputs=[target]))
        source = target
    graph.outputs = [source]
    for signature in model.signatureDefs or []:
        for output in signature.outputs:
            output.tensorIndex = source
    return write_model(model)


def tail_model(model_bytes: bytes, operators: int) -> bytes:
    """The last ``operators`` operators of a one-subgraph model as a model of their own, fed at
    the first of them's input (to run the appended float ops on every int8 value)."""
    model = read_model(model_bytes)
    graph = model.subgraphs[0]
    graph.operators = graph.operators[-operators:]
    graph.inputs = [graph.operators[0].inputs[0]]
    model.signatureDefs = None
    model.metadata = None
    return write_model(model)


SCORE_MARGIN = 1e-6  # about 8 float32 steps below 1: far more than a float sigmoid's error


def score_thresholds(int8_thresholds: list[int], scale: float, zero_point: int) -> list[float]:
    """For each class, a float32 number strictly between the probability of int8 value q - 1 and
    that of q, where q is the class's int8 threshold: halfway, so that a float sigmoid that is off
    by less than half the gap (any float32 implementation) decides as the int8 rule does."""
    table = probability_table(scale, zero_point)
    scores = []
    for q in int8_thresholds:
        if q == -128:
            scores.append(ALWAYS_SCORE)
        elif q == NEVER:
            scores.append(NEVER_SCORE)
        else:
            midpoint = (table[q - 1 + 128] + table[q + 128]) / 2
            scores.append(float(np.float32(midpoint)))
    return scores


def _tables(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    """A vector of tables (or strings) already written."""
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _table(builder: flatbuffers.Builder, fields: dict) -> int:
    """A table from {slot: (kind, value)}; kind is "offset", "byte" or "uint"."""
    builder.StartObject(max(fields) + 1 if fields else 0)
    for slot, (kind, value) in sorted(fields.items()):
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "byte":
            builder.PrependInt8Slot(slot, value, 0)
        else:
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def _floats(builder: flatbuffers.Builder, values: list[float]) -> int:
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(value)
    return builder.EndVector()


def _stats(builder: flatbuffers.Builder, low: float, high: float) -> int:
    high_offset, low_offset = _floats(builder, [high]), _floats(builder, [low])
    return _table(builder, {0: ("offset", high_offset), 1: ("offset", low_offset)})  # max, min


def metadata_flatbuffer(*, name: str, description: str, version: str, author: str,
                        input_size: int, labels_file: str, num_classes: int) -> bytes:
    """The ModelMetadata flatbuffer: the model's name, description, version and author; the input
    as an RGB image of input_size x input_size uint8 pixels; the output as per-class scores in
    [0, 1] whose axis labels are ``labels_file``."""
    builder = flatbuffers.Builder(1024)
    text = {key: builder.CreateString(value) for key, value in (
        ("name", name), ("description", description), ("version", version), ("author", author),
        ("input_name", INPUT_NAME), ("output_name", OUTPUT_NAME), ("labels", labels_file),
        ("input_description", f"The letterboxed RGB image, {input_size}x{input_size} uint8 "
                              "pixels, as inference_config.json's preprocessing makes it."),
        ("output_description", f"Probability of each of the {num_classes} classes (sigmoid, "
                               "independent per class: multi-label). Apply the per-class "
                               "score_thresholds of inference_config.json."),
        ("labels_description", "Class names, one per line, in output order."),
        ("parser", MIN_PARSER_VERSION))}

    size = _table(builder, {0: ("uint", input_size), 1: ("uint", input_size)})
    image = _table(builder, {0: ("byte", _RGB), 1: ("offset", size)})
    input_content = _table(builder, {0: ("byte", _IMAGE_PROPERTIES), 1: ("offset", image)})
    input_stats = _stats(builder, 0.0, 255.0)
    input_tensor = _table(builder, {0: ("offset", text["input_name"]),
                                    1: ("offset", text["input_description"]),
                                    3: ("offset", input_content), 5: ("offset", input_stats)})

    labels = _table(builder, {0: ("offset", text["labels"]),
                              1: ("offset", text["labels_description"]),
                              2: ("byte", _ASSOCIATED_LABELS)})
    features = _table(builder, {})
    output_content = _table(builder, {0: ("byte", _FEATURE_PROPERTIES), 1: ("offset", features)})
    output_stats = _stats(builder, 0.0, 1.0)
    output_files = _tables(builder, [labels])
    output_tensor = _table(builder, {0: ("offset", text["output_name"]),
                                     1: ("offset", text["output_description"]),
                                     3: ("offset", output_content), 5: ("offset", output_stats),
                                     6: ("offset", output_files)})

    inputs, outputs = _tables(builder, [input_tensor]), _tables(builder, [output_tensor])
    subgraph = _table(builder, {2: ("offset", inputs), 3: ("offset", outputs)})
    subgraphs = _tables(builder, [subgraph])
    root = _table(builder, {0: ("offset", text["name"]), 1: ("offset", text["description"]),
                            2: ("offset", text["version"]), 3: ("offset", subgraphs),
                            4: ("offset", text["author"]), 7: ("offset", text["parser"])})
    builder.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def with_metadata(model_bytes: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """``model_bytes`` with ``metadata`` as its TFLITE_METADATA entry and ``files`` (name ->
    content) in a zip archive appended after the flatbuffer, stored uncompressed."""
    model = read_model(model_bytes)
    model.metadata = [entry for entry in model.metadata or []
                      if entry.name != METADATA_NAME.encode()]
    model.buffers.append(tflite.BufferT(data=np.frombuffer(metadata, dtype=np.uint8)))
    model.metadata.append(tflite.MetadataT(name=METADATA_NAME.encode(),
                                           buffer=len(model.buffers) - 1))
    archive = io.BytesIO()
    archive.write(write_model(model))
    # zipfile appends an archive to bytes that are not one, offsets counted from the file's start
    with zipfile.ZipFile(archive, "a", compression=zipfile.ZIP_STORED) as bundle:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
            bundle.writestr(info, content)
    return archive.getvalue()


def read_metadata(model_bytes: bytes) -> tuple[bytes | None, dict[str, bytes]]:
    """(the TFLITE_METADATA flatbuffer or None, the files of the appended archive)."""
    model = tflite.Model.GetRootAs(model_bytes, 0)
    metadata = None
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name() == METADATA_NAME.encode():
            metadata = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as bundle:
            files = {name: bundle.read(name) for name in bundle.namelist()}
    except zipfile.BadZipFile:
        files = {}
    return metadata, files


def score_threshold_problems(scores: list[float], int8_thresholds: list[int], scale: float,
                             zero_point: int) -> list[str]:
    """Why ``scores`` would not decide as ``int8_thresholds`` do, one text per class (empty if
    they do): each must be 0 for int8 -128, above 1 for NEVER, and otherwise at least
    SCORE_MARGIN above the probability of q - 1 and below that of q."""
    table = probability_table(scale, zero_point)
    problems = []
    for index, (score, q) in enumerate(zip(scores, int8_thresholds)):
        if q == -128:
            fits = score == ALWAYS_SCORE
        elif q == NEVER:
            fits = score > 1
        else:
            fits = table[q - 1 + 128] + SCORE_MARGIN <= score <= table[q + 128] - SCORE_MARGIN
        if not fits:
            problems.append(f"score_thresholds[{index}] is {score!r}, which does not separate "
                            f"int8 value {q} from {q - 1} (probabilities "
                            f"{float(table[max(q - 1, -128) + 128])!r} and "
                            f"{float(table[min(q, 127) + 128])!r})")
    if len(scores) != len(int8_thresholds):
        problems.append(f"score_thresholds has {len(scores)} values for "
                        f"{len(int8_thresholds)} classes")
    return problems
