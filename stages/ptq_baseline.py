#!/usr/bin/env python
"""Stage ptq_baseline: what QAT buys over post-training quantisation, measured.

Converts the float student (models/student, before QAT) to full INT8 by post-training
quantisation, with the same representative training images, the same I/O contract and the same
checks as export; tunes its thresholds on val with the same search; scores it on test. Writes
models/ptq/model_ptq_int8.tflite and metrics/quantization.json: float student, PTQ INT8 and QAT
INT8 (the shipped model, at its shipped thresholds) side by side, with test macro-F1, micro-F1
and how often each INT8 model's decisions agree with its float model's.
Reads params: seed, export.representative_samples, threshold_search.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.common.arguments import stage_parser  # noqa: E402
from stages.common.errors import run_main  # noqa: E402
from stages.common.params import load_params  # noqa: E402


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="models/ptq/model_ptq_int8.tflite")
    parser.add_argument("--report", default="metrics/quantization.json")
    args = parser.parse_args()
    params = load_params(args.params)
    import numpy as np

    from stages.common.dataset import load_prepared
    from stages.common.evaluation_data import CHUNK, int8_outputs
    from stages.common.export import representative_indices
    from stages.common.int8_runtime import Int8Model
    from stages.common.models import load_trained
    from stages.common.preprocessing import normalize_student
    from stages.common.quantization_comparison import MODELS, comparison, export_ptq_int8
    from stages.common.shards import Shards
    from stages.common.thresholds import threshold_grid

    dataset = load_prepared("data/prepared")
    shards = Shards.open("data/shards", dataset)
    student, meta = load_trained("models/student")
    shards.require_size("student", meta["input_size"], "the float student")
    chosen = representative_indices(params["export"]["representative_samples"],
                                    shards.count("train"), params["seed"])
    pixels = np.concatenate(list(shards.pixel_chunks("train", "student", CHUNK, indices=chosen)))
    print(f"ptq_baseline: converting the float student with {len(pixels)} representative images "
          "(about a minute)...", flush=True)
    facts = export_ptq_int8(student, pixels, args.out)
    ptq_model = Int8Model.load(args.out)
    qat_model = Int8Model.load("models/export/model_qat_int8.tflite")
    targets, float_logits, ptq_raw, qat_raw = {}, {}, {}, {}
    for split in ("val", "test"):
        targets[split] = np.array(dataset.targets(split), dtype=np.int64).reshape(-1, len(dataset.classes))
        float_logits[split] = np.concatenate([np.zeros((0, len(dataset.classes)))] + [
            student(normalize_student(chunk), training=False).numpy()
            for chunk in shards.pixel_chunks(split, "student", 32)])
        ptq_raw[split] = int8_outputs(ptq_model, shards, split)
        qat_raw[split] = int8_outputs(qat_model, shards, split)
    search = params["threshold_search"]
    grid = threshold_grid(search["grid_min"], search["grid_max"], search["grid_step"])
    qat_fidelity = json.loads(Path("metrics/export.json").read_text())["fidelity_test"]
    report = comparison(targets, float_logits, (ptq_model, ptq_raw), (qat_model, qat_raw),
                        json.loads(Path("metrics/thresholds.json").read_text()), grid,
                        dataset.classes, qat_fidelity["identical_decisions_at_0.5"])
    report["ptq_export"] = facts
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    for name in MODELS:
        row = report[name]
        print(f"ptq_baseline: {name:13s} test macro-F1 {row['test_f1_macro']:.4f}, micro-F1 "
              f"{row['test_f1_micro']:.4f}, decisions equal to the float student's "
              f"{row['test_decisions_agree_with_float_student_at_0.5']:.2%}")


if __name__ == "__main__":
    run_main(main)
