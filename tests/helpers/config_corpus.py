"""The conformance corpus of the five-file folder, written on demand (no model file is kept in
git): base/ (a tiny real model, its labels and config, four images) and one folder per case
holding only the files that differ from base/, plus case.json: the verdict every reader must
give ("accept" or "refuse"), why, and where one rule alone refuses the case, what both readers'
messages must say.

The rules are docs/output_folder_rules.md. tests/deployment/test_config_conformance.py writes the
corpus once per test session (the ``config_corpus`` fixture) and runs every case through predict
(Python) and the C app. A phone team writing its own reader gets the same folders with
``python tests/helpers/config_corpus.py OUT_DIR`` (run from the repository root).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import stages  # noqa: E402,F401  (Keras 2 before TensorFlow)

# isort: split

CLASSES = ["cat", "dog", "bird"]
SIZE = 16


def _tiny_model(path: Path) -> None:
    """A small full-integer model with the pipeline's signature: uint8 [1, 16, 16, 3] in, int8
    [1, 3] out."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(5)
    inputs = tf.keras.Input((SIZE, SIZE, 3))
    x = tf.keras.layers.Rescaling(1 / 128, offset=-127 / 128)(inputs)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(len(CLASSES))(x))
    serve = tf.function(lambda image: model(image, training=False))
    signature = serve.get_concrete_function(tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([signature], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.integers(0, 256, (1, SIZE, SIZE, 3))
                                                 .astype(np.float32)] for _ in range(32))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())


def _base(base: Path) -> None:
    from stages.common.data.image_files import encode_ppm
    from stages.common.deployment.deliverables import inference_config
    from stages.common.quantization.int8_runtime import Int8Model

    base.mkdir(parents=True)
    model_path = base / "model_qat_int8.tflite"
    _tiny_model(model_path)
    model = Int8Model.load(model_path)
    images = base / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    pixels = [rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(4)]
    for index, image in enumerate(pixels):
        (images / f"image_{index}.ppm").write_bytes(encode_ppm(image))
    # thresholds at the median image's outputs, so that some classes are predicted and some not
    from stages.common.data.preprocessing import letterbox

    outputs = model.raw_outputs(np.stack([letterbox(p, SIZE) for p in pixels]))
    table = 1 / (1 + np.exp(-(np.arange(-128, 128) - model.output_zero_point) * model.output_scale))
    median = np.sort(outputs.astype(int), axis=0)[len(pixels) // 2]
    thresholds = {name: float(table[q + 128]) for name, q in zip(CLASSES, median)}
    recommendation = {"adopted": "per_class", "per_class_thresholds": thresholds}
    kernel_paths = {"adopted": "xnnpack", "paths": {}, "rule": "none measured for the corpus"}
    config = inference_config(
        model,
        hashlib.sha256(model_path.read_bytes()).hexdigest(),
        CLASSES,
        recommendation,
        {"made_by": "tests/helpers/config_corpus.py"},
        kernel_paths,
    )
    (base / "inference_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False)
                                                + "\n", encoding="utf-8")
    (base / "labels.txt").write_text("".join(f"{name}\n" for name in CLASSES), encoding="utf-8")


def _flipped_weight(base: Path) -> bytes:
    """The model with one bit of a weight changed: still a model the runtime loads and runs,
    with other outputs (only the sha256 can tell)."""
    from stages.common.data.preprocessing import decode_image, letterbox
    from stages.common.quantization.int8_runtime import Int8Model

    model = (base / "model_qat_int8.tflite").read_bytes()
    pixels = np.stack([letterbox(decode_image(path.read_bytes()), SIZE)
                       for path in sorted((base / "images").glob("*.ppm"))])
    expected = Int8Model.load(base / "model_qat_int8.tflite").raw_outputs(pixels)
    probe = base.parent / "probe.tflite"
    try:
        for position in range(len(model) // 2, len(model)):
            flipped = bytearray(model)
            flipped[position] ^= 0x40
            probe.write_bytes(bytes(flipped))
            try:
                outputs = Int8Model.load(probe).raw_outputs(pixels)
            except Exception:  # noqa: BLE001  (a flip in the structure: try the next byte)
                continue
            if not np.array_equal(outputs, expected):
                return bytes(flipped)
    finally:
        probe.unlink(missing_ok=True)
    raise SystemExit("no byte of the model changes its outputs when flipped")


# what both readers' messages must say, where one rule alone refuses the case
BOTH_SAY = {"refuse_model_byte_flipped": "sha256 differs", "refuse_model_truncated": "bytes",
            "refuse_config_not_utf8": "not valid UTF-8", "refuse_labels_not_utf8":
            "not valid UTF-8", "refuse_format_version_2": "format_version",
            "refuse_int8_below_range": "thresholds.classes[0].int8",
            "refuse_threshold_row_missing": "each class needs",
            "refuse_sha256_short": "model.sha256",
            "refuse_output_zero_point_128": "output.quantization.zero_point",
            "refuse_input_four_channels": "input.shape"}


def _config(base: Path) -> dict:
    return json.loads((base / "inference_config.json").read_text(encoding="utf-8"))


def _dump(config: dict) -> bytes:
    return (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _cases(base: Path) -> dict[str, tuple[str, str, dict]]:
    """name -> (verdict, why, {file name: bytes, or "fifo"/"folder"/None for removed})."""
    config = _config(base)
    text = (base / "inference_config.json").read_bytes()
    model = (base / "model_qat_int8.tflite").read_bytes()
    labels = (base / "labels.txt").read_bytes()
    scale = config["output"]["quantization"]["scale"]
    zero_point = config["output"]["quantization"]["zero_point"]

    def changed(edit) -> bytes:
        copy = json.loads(text)
        edit(copy)
        return _dump(copy)

    def renamed(old: str, new: str) -> dict:
        """Class ``old`` called ``new`` in the config and in labels.txt alike."""
        def edit(c):
            c["labels"]["classes"] = [new if n == old else n for n in c["labels"]["classes"]]
            for row in c["thresholds"]["classes"]:
                row["class"] = new if row["class"] == old else row["class"]
        return {"inference_config.json": changed(edit),
                "labels.txt": labels.replace(old.encode() + b"\n", new.encode("utf-8") + b"\n")}

    def row(index, **values):
        return changed(lambda c: c["thresholds"]["classes"][index].update(values))

    def extra(raw: str) -> bytes:
        """The config with one more member, written as raw JSON text."""
        return text.replace(b"{", b'{\n  "extra": ' + raw.encode("utf-8") + b",", 1)

    table = 1 / (1 + np.exp(-(np.arange(-128, 128) - zero_point) * scale))
    q0 = config["thresholds"]["classes"][0]["int8"]
    flipped = _flipped_weight(base)
    # other thresholds, each consistent: a reader that keeps the first of two "thresholds"
    # members and one that keeps the last would both accept, with other labels
    shifted = json.loads(text)
    for index, threshold in enumerate(shifted["thresholds"]["classes"]):
        q = threshold["int8"] - 20 * (index + 1)
        threshold.update(int8=q, probability=float(table[q + 128]))
    shifted_thresholds = json.dumps(shifted["thresholds"]).encode()
    return {
        # accepted: what the package stage writes, and harmless variations of it
        "accept_as_packaged": ("accept", "the folder as the package stage writes it", {}),
        "accept_labels_without_final_newline": (
            "accept",
            "the last line of labels.txt may lack its newline",
            {"labels.txt": labels.rstrip(b"\n")},
        ),
        "accept_unknown_members": (
            "accept",
            "members the rules do not name are ignored",
            {"inference_config.json": extra('{"note": [1, 2.5, null]}')},
        ),
        "accept_compact_json": (
            "accept",
            "JSON whitespace is free",
            {"inference_config.json": json.dumps(config, separators=(",", ":")).encode()},
        ),
        "accept_unicode_labels": (
            "accept",
            "labels are UTF-8: any letter, composed or not",
            renamed("bird", "p\u00e1jaro \u732b"),
        ),
        "accept_never_and_always": (
            "accept",
            "int8 128 (never predicted) for a probability no "
            "output reaches, -128 for probability 0",
            {
                "inference_config.json": changed(
                    lambda c: (
                        c["thresholds"]["classes"][0].update(int8=128, probability=1.0),
                        c["thresholds"]["classes"][1].update(int8=-128, probability=0.0),
                    )
                )
            },
        ),
        "accept_without_optional_sections": (
            "accept",
            "kernels and labels.file may be absent",
            {
                "inference_config.json": changed(
                    lambda c: (c.pop("kernels"), c["labels"].pop("file"))
                )
            },
        ),
        "accept_nested_64_deep": (
            "accept",
            "64 levels of arrays and objects are allowed",
            {"inference_config.json": extra("[" * 63 + "]" * 63)},
        ),
        "accept_threshold_on_a_table_value": (
            "accept",
            "a probability equal to an int8 output's probability gives that output",
            {"inference_config.json": row(0, int8=q0, probability=float(table[q0 + 128]))},
        ),
        # the JSON subset
        "refuse_duplicate_thresholds": (
            "refuse",
            "a member name twice, both values valid: "
            "readers keeping the first or the last would give "
            "other labels",
            {
                "inference_config.json": text.replace(
                    b'"thresholds": {',
                    b'"thresholds": ' + shifted_thresholds + b',\n  "thresholds": {',
                    1,
                )
            },
        ),
        "refuse_duplicate_same_value": (
            "refuse",
            "a member name twice with the same value",
            {
                "inference_config.json": text.replace(
                    b'"format_version": 1,', b'"format_version": 1,\n  "format_version": 1,', 1
                )
            },
        ),
        "refuse_duplicate_nested_key": (
            "refuse",
            "a member name twice inside model",
            {
                "inference_config.json": text.replace(
                    b'"model": {', b'"model": {"sha256": "' + b"0" * 64 + b'", ', 1
                )
            },
        ),
        "refuse_nan": (
            "refuse",
            "NaN is not JSON",
            {
                "inference_config.json": text.replace(
                    b'"probability": '
                    + json.dumps(config["thresholds"]["classes"][0]["probability"]).encode(),
                    b'"probability": NaN',
                    1,
                )
            },
        ),
        "refuse_infinity": (
            "refuse",
            "Infinity is not JSON",
            {"inference_config.json": extra("-Infinity")},
        ),
        "refuse_number_out_of_range": (
            "refuse",
            "1e400 is no finite double",
            {"inference_config.json": extra("1e400")},
        ),
        "refuse_number_too_long": (
            "refuse",
            "numbers of more than 63 characters",
            {"inference_config.json": extra("1" * 70)},
        ),
        "refuse_nested_65_deep": (
            "refuse",
            "more than 64 levels",
            {"inference_config.json": extra("[" * 64 + "]" * 64)},
        ),
        "refuse_nested_100000_deep": (
            "refuse",
            "far more than 64 levels",
            {"inference_config.json": extra("[" * 100000 + "]" * 100000)},
        ),
        "refuse_byte_order_mark": (
            "refuse",
            "a UTF-8 byte-order mark",
            {"inference_config.json": b"\xef\xbb\xbf" + text},
        ),
        "refuse_config_not_utf8": (
            "refuse",
            "a byte that is not UTF-8",
            {"inference_config.json": extra('"caf\xe9"').replace("caf\xe9".encode(), b"caf\xe9")},
        ),
        "refuse_nul_escape": (
            "refuse",
            "\\u0000 inside a string",
            {"inference_config.json": extra('"a\\u0000b"')},
        ),
        "refuse_lone_surrogate": (
            "refuse",
            "a lone UTF-16 surrogate",
            {"inference_config.json": extra('"\\ud800"')},
        ),
        "refuse_trailing_data": (
            "refuse",
            "data after the value",
            {"inference_config.json": text + b"{}\n"},
        ),
        # fields
        "refuse_format_version_float": (
            "refuse",
            "1.0 is not the integer 1",
            {"inference_config.json": changed(lambda c: c.update(format_version=1.0))},
        ),
        "refuse_int8_float": (
            "refuse",
            "an int8 threshold written 12.0",
            {"inference_config.json": row(1, int8=float(q0))},
        ),
        "refuse_int8_contradicts_probability": (
            "refuse",
            "int8 -128 with a probability the lowest output does not reach",
            {
                "inference_config.json": row(
                    0, int8=-128, probability=float(table[0] + table[1]) / 2
                )
            },
        ),
        "refuse_int8_off_by_one": (
            "refuse",
            "int8 one step above what the probability gives",
            {
                "inference_config.json": row(
                    0, int8=q0 + 1, probability=float(table[q0 + 127] + table[q0 + 128]) / 2
                )
            },
        ),
        "refuse_probability_above_one": (
            "refuse",
            "a probability of 1.5",
            {"inference_config.json": row(2, probability=1.5, int8=128)},
        ),
        "refuse_model_file_renamed": (
            "refuse",
            "model.file names a file other than the five",
            {
                "inference_config.json": changed(lambda c: c["model"].update(file="other.tflite")),
                "other.tflite": model,
            },
        ),
        "refuse_labels_file_elsewhere": (
            "refuse",
            "labels.file names a file other than the five",
            {
                "inference_config.json": changed(lambda c: c["labels"].update(file="classes.txt")),
                "classes.txt": labels,
            },
        ),
        "refuse_model_bytes_missing": (
            "refuse",
            "model.bytes is required",
            {"inference_config.json": changed(lambda c: c["model"].pop("bytes"))},
        ),
        "refuse_sha256_uppercase": (
            "refuse",
            "model.sha256 in uppercase hex",
            {
                "inference_config.json": changed(
                    lambda c: c["model"].update(sha256=c["model"]["sha256"].upper())
                )
            },
        ),
        "refuse_height_disagrees": (
            "refuse",
            "input.height is not input.shape[1]",
            {"inference_config.json": changed(lambda c: c["input"].update(height=SIZE + 1))},
        ),
        "refuse_channels_float": (
            "refuse",
            "input.channels written 3.0",
            {"inference_config.json": changed(lambda c: c["input"].update(channels=3.0))},
        ),
        "refuse_preprocessing_missing": (
            "refuse",
            "preprocessing is required",
            {"inference_config.json": changed(lambda c: c.pop("preprocessing"))},
        ),
        "refuse_adopted_unknown": (
            "refuse",
            "thresholds.adopted is global or per_class",
            {"inference_config.json": changed(lambda c: c["thresholds"].update(adopted="median"))},
        ),
        "refuse_kernels_unknown": (
            "refuse",
            "kernels.tuned_and_evaluated_on names a path",
            {
                "inference_config.json": changed(
                    lambda c: c["kernels"].update(tuned_and_evaluated_on="gpu")
                )
            },
        ),
        "refuse_threshold_rows_swapped": (
            "refuse",
            "the threshold rows of two classes in "
            "each other's place: one class would get the "
            "other's threshold",
            {
                "inference_config.json": changed(
                    lambda c: c["thresholds"]["classes"].__setitem__(
                        slice(0, 2), c["thresholds"]["classes"][1::-1]
                    )
                )
            },
        ),
        "refuse_input_zero_point_other": (
            "refuse",
            "the input zero point of another model (in range, but not this model's)",
            {
                "inference_config.json": changed(
                    lambda c: c["input"]["quantization"].update(
                        zero_point=(c["input"]["quantization"]["zero_point"] + 1) % 256
                    )
                )
            },
        ),
        "refuse_duplicate_classes": ("refuse", "two classes of one name", renamed("dog", "cat")),
        # what a reader that skips one check would accept (hand-made C mutants,
        # scripts/c_mutants.py): each refusal must name the field, not a later symptom
        "refuse_format_version_2": (
            "refuse",
            "a format this reader does not know",
            {"inference_config.json": changed(lambda c: c.update(format_version=2))},
        ),
        "refuse_int8_below_range": (
            "refuse",
            "int8 -129, with the probability it would give",
            {
                "inference_config.json": row(
                    0, int8=-129, probability=float(1 / (1 + np.exp(-(-129 - zero_point) * scale)))
                )
            },
        ),
        "refuse_threshold_row_missing": (
            "refuse",
            "a class without its threshold row",
            {"inference_config.json": changed(lambda c: c["thresholds"]["classes"].pop())},
        ),
        "refuse_labels_file_same_initial": (
            "refuse",
            "labels.txt names another class with the same first letter",
            {"labels.txt": labels.replace(b"cat\n", b"cow\n")},
        ),
        "refuse_sha256_short": (
            "refuse",
            "model.sha256 one digit short",
            {
                "inference_config.json": changed(
                    lambda c: c["model"].update(sha256=c["model"]["sha256"][:63])
                )
            },
        ),
        "refuse_output_zero_point_128": (
            "refuse",
            "an output zero point no int8 tensor has",
            {
                "inference_config.json": changed(
                    lambda c: c["output"]["quantization"].update(zero_point=128)
                )
            },
        ),
        "refuse_input_four_channels": (
            "refuse",
            "an input of four channels",
            {
                "inference_config.json": changed(
                    lambda c: c["input"].update(shape=[1, SIZE, SIZE, 4])
                )
            },
        ),
        # labels
        "refuse_labels_nul_byte": (
            "refuse",
            "a NUL byte inside a line of labels.txt",
            {"labels.txt": labels.replace(b"cat\n", b"cat\x00x\n")},
        ),
        "refuse_labels_not_utf8": (
            "refuse",
            "a label that is not UTF-8",
            {"labels.txt": labels.replace(b"dog", b"d\xf6g")},
        ),
        "refuse_labels_crlf": (
            "refuse",
            "CRLF line ends (CR is a control character)",
            {"labels.txt": labels.replace(b"\n", b"\r\n")},
        ),
        "refuse_labels_extra_line": (
            "refuse",
            "an empty line after the last label",
            {"labels.txt": labels + b"\n"},
        ),
        "refuse_zero_width_label": (
            "refuse",
            "a zero-width space makes a lookalike class",
            renamed("cat", "ca\u200bt"),
        ),
        "refuse_no_break_space_label": (
            "refuse",
            "a no-break space makes a lookalike class",
            renamed("bird", "blue\u00a0bird"),
        ),
        # the model
        "refuse_model_truncated": (
            "refuse",
            "a cut copy of the model",
            {"model_qat_int8.tflite": model[: len(model) // 2]},
        ),
        "refuse_model_byte_flipped": (
            "refuse",
            "one bit of a weight changed: the model still loads and runs, with other outputs",
            {"model_qat_int8.tflite": flipped},
        ),
        "refuse_model_bytes_wrong": (
            "refuse",
            "model.bytes one more than the file",
            {
                "inference_config.json": changed(
                    lambda c: c["model"].update(bytes=c["model"]["bytes"] + 1)
                )
            },
        ),
        # not regular files
        "refuse_labels_fifo": ("refuse", "labels.txt is a FIFO", {"labels.txt": "fifo"}),
        "refuse_config_folder": (
            "refuse",
            "inference_config.json is a folder",
            {"inference_config.json": "folder"},
        ),
        "refuse_model_fifo": ("refuse", "the model is a FIFO", {"model_qat_int8.tflite": "fifo"}),
        "refuse_labels_missing": ("refuse", "labels.txt is missing", {"labels.txt": None}),
    }


def write_corpus(root: Path) -> Path:
    """base/ and every case folder under ``root`` (created); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    base = root / "base"
    _base(base)
    for name, (verdict, why, files) in _cases(base).items():
        folder = root / name
        folder.mkdir()
        special = {}
        for file_name, content in files.items():
            if isinstance(content, bytes):
                (folder / file_name).write_bytes(content)
            else:
                special[file_name] = content or "missing"
        extra = {"special": special} if special else {}
        if BOTH_SAY.get(name) or set(special.values()) & {"fifo", "folder"}:
            extra["both_say"] = BOTH_SAY.get(name, "not a regular file")
        (folder / "case.json").write_text(json.dumps(
            {"verdict": verdict, "why": why, **extra}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/helpers/config_corpus.py OUT_DIR")
    out = write_corpus(Path(sys.argv[1]))
    print(f"wrote base/ and {sum(1 for p in out.iterdir() if p.name != 'base')} cases in {out}")
