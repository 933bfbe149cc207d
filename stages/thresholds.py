"""Stage thresholds: tune decision thresholds on VAL with the exported INT8 model.

Runs models/export/model_qat_int8.tflite through the LiteRT interpreter on the val split (what
the phone will compute), grid-searches a global threshold (threshold_search.*) for macro-F1, then
per-class thresholds, adopted only if they beat the global one by more than 0.5 points (on the
images they were tuned on, or held out: threshold_search.adoption_check).
Reads params: threshold_search.*. Writes metrics/thresholds.json (the recommendation) and
metrics/plots/f1_vs_threshold.csv.
"""
import csv
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import add_evaluation_data, stage_parser
from stages.common.core.errors import run_main
from stages.common.core.json_files import write_json
from stages.common.core.params import load_params


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--model", default=str(layout.EXPORT_MODEL))
    add_evaluation_data(parser)
    parser.add_argument("--out", default=str(layout.THRESHOLDS))
    parser.add_argument("--curve", default=str(layout.F1_CURVE))
    args = parser.parse_args()
    search = load_params(args.params).threshold_search
    from stages.common.quantization.int8_outputs import int8_split_outputs
    from stages.common.scoring.threshold_search import search_thresholds, threshold_grid

    classes, targets, outputs, model = int8_split_outputs(args.model, args.prepared, "val",
                                                          args.shards)
    grid = threshold_grid(search.grid_min, search.grid_max, search.grid_step)
    recommendation = search_thresholds(targets, model.probabilities(outputs[model.kernels]), grid,
                                       classes, check=search.adoption_check, folds=search.folds)
    recommendation["grid"] = {"min": search.grid_min, "max": search.grid_max,
                              "step": search.grid_step, "values": len(grid),
                              "objective": search.objective, "split": "val",
                              "model": "INT8 TFLite (LiteRT interpreter)"}
    curve = recommendation.pop("f1_vs_threshold")
    Path(args.curve).parent.mkdir(parents=True, exist_ok=True)
    with open(args.curve, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["threshold", "f1_macro"])
        writer.writeheader()
        writer.writerows(curve)
    write_json(args.out, recommendation, ensure_ascii=False)
    print(f"thresholds: global {recommendation['global_threshold']:.2f} (val macro-F1 "
          f"{recommendation['val_f1_macro_global']:.4f}); per-class val macro-F1 "
          f"{recommendation['val_f1_macro_per_class']:.4f}; adopted: {recommendation['adopted']}")


if __name__ == "__main__":
    run_main(main)
