"""Stage export: full-integer TFLite model from the QAT student.

Representative data: export.representative_samples training images (seeded choice) through the
deployment preprocessing. Builtin INT8 ops, uint8 input, int8 logits out. Fails if the input
quantisation is not scale 1/128 / zero point 127, the output not int8, or a float tensor is left.
The model's signature is one image per run, [1, S, S, 3], as inference_config.json says.
Writes models/export/model_qat_int8.tflite and metrics/export.json: INT8 vs float QAT fidelity
on val and test, and how far TFLite's builtin and reference CPU kernels are from XNNPACK (the
adopted path) on the same images; the test outputs of every kernel path go to
models/export/kernel_outputs_test.npz for evaluate.
Reads params: seed, export.*.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser
from stages.common.core.errors import run_main
from stages.common.core.json_files import write_json
from stages.common.core.params import load_params


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default=str(layout.EXPORT_MODEL))
    parser.add_argument("--report", default=str(layout.EXPORT_REPORT))
    args = parser.parse_args()
    params = load_params(args.params)
    import numpy as np

    from stages.common.data.dataset import load_prepared
    from stages.common.data.tfrecord_shards import Shards
    from stages.common.models.fake_quant import rebuild_qat_student
    from stages.common.models.trained_models import read_model_meta
    from stages.common.quantization.int8_export import (
        export_int8,
        fidelity,
        kernel_paths_at_half,
        representative_indices,
    )
    from stages.common.quantization.int8_outputs import CHUNK, kernel_outputs, kernel_path_models
    from stages.common.quantization.int8_runtime import (
        ADOPTED_KERNEL_PATH,
        KERNEL_OUTPUTS_FILE,
        KERNEL_PATHS,
        Int8Model,
        save_kernel_outputs,
    )

    dataset = load_prepared(layout.PREPARED)
    shards = Shards.open(layout.SHARDS, dataset)
    meta = read_model_meta(layout.QAT)
    shards.require_size("student", meta["input_size"], "the QAT model")
    qat_model = rebuild_qat_student(len(meta["classes"]), meta["input_size"], meta["dropout"],
                                    layout.QAT, meta["pooling"])
    chosen = representative_indices(params.export.representative_samples,
                                    shards.count("train"), params.seed)
    pixels = np.concatenate(list(shards.pixel_chunks("train", "student", CHUNK, indices=chosen)))
    print(f"export: converting with {len(pixels)} representative images...", flush=True)
    report = export_int8(qat_model, pixels, args.out)
    int8_model = Int8Model.load(args.out)
    for split in ("val", "test"):
        report[f"fidelity_{split}"] = fidelity(int8_model, qat_model,
                                               shards.pixel_chunks(split, "student", CHUNK),
                                               dataset.target_matrix(split))
    kernel_models = [int8_model, *kernel_path_models(
        args.out, [name for name in KERNEL_PATHS if name != ADOPTED_KERNEL_PATH])]
    outputs = {split: kernel_outputs(kernel_models, shards, split) for split in ("val", "test")}
    report["kernel_paths"] = {
        "adopted": ADOPTED_KERNEL_PATH,
        "paths": {name: description for name, (_, description) in KERNEL_PATHS.items()},
        **{split: kernel_paths_at_half(outputs[split], int8_model) for split in ("val", "test")},
    }
    # evaluate judges the other kernels on test at the adopted thresholds from these very
    # outputs: the reference kernels alone take about 0.3 s per image
    save_kernel_outputs(Path(args.out).with_name(KERNEL_OUTPUTS_FILE), outputs["test"])
    write_json(args.report, report)
    val = report["fidelity_val"]
    print(
        f"export: {args.out} ({report['file_bytes'] / 1e6:.2f} MB), "
        f"input {report['input']['shape']} "
        f"scale {report['input']['scale']} zero point {report['input']['zero_point']}; val: max "
        f"|dp| {val['max_abs_probability_difference']:.4f}, same decisions "
        f"{val['identical_decisions_at_0.5']:.2%}"
    )
    for split in ("val", "test"):
        for name, agreement in report["kernel_paths"][split].items():
            print(f"export: {split}, {name} kernels vs {ADOPTED_KERNEL_PATH}: "
                  f"{agreement['differing_outputs']:.2%} of int8 outputs differ (at most by "
                  f"{agreement['max_difference']}), {agreement['images_with_other_labels']} of "
                  f"{agreement['images']} images get other labels at 0.5")


if __name__ == "__main__":
    run_main(main)
