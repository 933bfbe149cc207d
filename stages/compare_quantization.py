"""Stage compare_quantization: float student, PTQ INT8 and QAT INT8 side by side on test.

The float student (models/student) and the PTQ model (models/ptq) get thresholds tuned on val
with threshold_search, as the shipped QAT model (models/export) got its own
(metrics/thresholds.json); each is then scored on test. Writes metrics/quantization.json: test
macro-F1, micro-F1, precision, recall, and how often each model's decisions at 0.5 agree with the
float student's and with its own float model's.
Reads params: threshold_search. Its inputs are the pipeline's own files, always together: a
model passed alone would be scored with another model's thresholds and fidelity.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser
from stages.common.core.errors import read_json_file, run_main
from stages.common.core.json_files import write_json
from stages.common.core.params import load_params


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default=str(layout.QUANTIZATION))
    args = parser.parse_args()
    search = load_params(args.params).threshold_search
    from stages.common.data.dataset import load_prepared
    from stages.common.data.tfrecord_shards import Shards
    from stages.common.evaluation.quantization_comparison import MODELS, comparison, split_outputs
    from stages.common.models.trained_models import load_trained
    from stages.common.quantization.int8_runtime import Int8Model
    from stages.common.scoring.threshold_search import threshold_grid

    dataset = load_prepared(layout.PREPARED)
    shards = Shards.open(layout.SHARDS, dataset)
    student, meta = load_trained(layout.STUDENT)
    shards.require_size("student", meta["input_size"], "the float student")
    ptq_model, qat_model = Int8Model.load(layout.PTQ_MODEL), Int8Model.load(layout.EXPORT_MODEL)
    outputs = split_outputs(dataset, shards, student, ptq_model, qat_model)
    grid = threshold_grid(search.grid_min, search.grid_max, search.grid_step)
    report = comparison(outputs, read_json_file(layout.THRESHOLDS, "thresholds"), grid,
                        dataset.classes,
                        read_json_file(layout.EXPORT_REPORT, "export")["fidelity_test"],
                        {"check": search.adoption_check, "folds": search.folds})
    report["ptq_export"] = read_json_file(layout.PTQ_MODEL.with_name("export.json"),
                                          "ptq_baseline")
    write_json(args.out, report)
    for name in MODELS:
        row = report[name]
        print(f"compare_quantization: {name:13s} test macro-F1 {row['test_f1_macro']:.4f}, "
              f"micro-F1 {row['test_f1_micro']:.4f}, decisions equal to the float student's "
              f"{row['test_decisions_agree_with_float_student_at_0.5']:.2%}")


if __name__ == "__main__":
    run_main(main)
