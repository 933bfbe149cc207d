"""Stage evaluate: the INT8 model on TEST with the adopted thresholds.

Writes metrics/evaluation.json (precision/recall/F1 macro, F1 micro, per class with support and
threshold, predicted and true no-label rates, the same at 0.5), how the other CPU kernel paths
(TFLite builtin and reference kernels) would change the test decisions, with a loud warning when
that is material, and per-class precision-recall curves in metrics/plots/pr/; and
metrics/test_errors.json, the test images it gets wrong (the report's error gallery). The other
kernels' test outputs are the ones export saved beside the model (kernel_outputs_test.npz), used
only if its XNNPACK outputs equal the ones computed here; otherwise they are computed again.
Reads no params.
"""
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import add_evaluation_data, stage_parser
from stages.common.core.errors import read_json_file, run_main
from stages.common.core.json_files import write_json


def main() -> None:
    parser = stage_parser(__doc__, params=False)
    parser.add_argument("--model", default=str(layout.EXPORT_MODEL))
    add_evaluation_data(parser)
    parser.add_argument("--thresholds", default=str(layout.THRESHOLDS))
    parser.add_argument("--out", default=str(layout.EVALUATION))
    parser.add_argument("--curves", default=str(layout.PR_CURVES))
    parser.add_argument("--errors", default=str(layout.TEST_ERRORS),
                        help="the test images the model gets wrong (the report's error gallery)")
    args = parser.parse_args()
    from stages.common.data.dataset import load_prepared
    from stages.common.evaluation.int8_evaluation import (
        evaluation_report,
        kernel_paths_report,
        misclassified,
        write_precision_recall_curves,
    )
    from stages.common.quantization.int8_outputs import int8_split_outputs
    from stages.common.quantization.int8_runtime import (
        ADOPTED_KERNEL_PATH,
        KERNEL_OUTPUTS_FILE,
        KERNEL_PATHS,
        load_kernel_outputs,
    )
    from stages.common.scoring.threshold_search import adopted_thresholds

    classes, targets, outputs, model = int8_split_outputs(args.model, args.prepared, "test",
                                                          args.shards)
    saved = load_kernel_outputs(Path(args.model).with_name(KERNEL_OUTPUTS_FILE),
                                outputs[ADOPTED_KERNEL_PATH])
    if saved is None:  # export did not save them for this model: run the other kernels here
        kernels = (
            ADOPTED_KERNEL_PATH,
            *(name for name in KERNEL_PATHS if name != ADOPTED_KERNEL_PATH),
        )
        outputs = int8_split_outputs(args.model, args.prepared, "test", args.shards,
                                     kernels=kernels)[2]
    else:
        outputs = saved
    raw = outputs.pop(ADOPTED_KERNEL_PATH)
    recommendation = read_json_file(args.thresholds, "thresholds")
    probabilities = model.probabilities(raw)
    thresholds = adopted_thresholds(recommendation, classes)
    report = evaluation_report(targets, probabilities, thresholds, classes)
    report["kernel_paths"] = kernel_paths_report(targets, raw, outputs, model, thresholds)
    write_json(args.out, report, ensure_ascii=False)
    write_precision_recall_curves(args.curves, classes, targets, probabilities)
    names = [record.name for record in load_prepared(args.prepared).splits["test"]]
    Path(args.errors).write_text(json.dumps(
        misclassified(targets, probabilities, thresholds, classes, names), indent=1,
        ensure_ascii=False) + "\n")
    print(
        f"evaluate (test, INT8): macro-F1 {report['f1_macro']:.4f}, micro-F1 "
        f"{report['f1_micro']:.4f}, precision {report['precision_macro']:.4f}, recall "
        f"{report['recall_macro']:.4f}; "
        f"at 0.5: macro-F1 {report['at_threshold_0.5']['f1_macro']:.4f}"
    )
    for name, path in report["kernel_paths"]["paths"].items():
        line = (
            f"{name} kernels instead of {ADOPTED_KERNEL_PATH}: {path['images_with_other_labels']}"
            f" of {path['images']} test images get other labels, macro-F1 "
            f"{path['f1_macro']:.4f} ({path['f1_macro_change']:+.4f})"
        )
        if path["material"]:
            print(
                f"WARNING: evaluate: {line}. This is material ({report['kernel_paths']['rule']}): "
                f"a phone running {KERNEL_PATHS[name][1]} will not get the measured results; "
                f"run the model there with {KERNEL_PATHS[ADOPTED_KERNEL_PATH][1]}, or measure "
                "on the phone's own path before you ship",
                file=sys.stderr,
            )
        else:
            print(f"evaluate: {line}")


if __name__ == "__main__":
    run_main(main)
