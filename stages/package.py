"""Stage package: write the seed's five mandatory outputs into output.dir.

model_qat_int8.tflite, labels.txt (output order), metrics.json (test, INT8, adopted thresholds),
threshold_recommendation.json and inference_config.json (everything the C side needs:
input/output tensors and quantisation, the exact letterbox arithmetic, labels, thresholds in
probability and int8 units, provenance). Beside them, model_qat_int8_metadata.tflite: the same
integer graph with a float32 probability output and TFLite metadata, for MediaPipe Tasks; the
config lists it. The folder holds exactly these six files. Reads params: output.dir.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser
from stages.common.core.errors import read_json_file, run_main
from stages.common.core.params import load_params


def main() -> None:
    parser = stage_parser(__doc__)
    args = parser.parse_args()
    params = load_params(args.params)
    from stages.common.core.hashing import file_sha256
    from stages.common.data.dataset import load_prepared
    from stages.common.deployment.deliverables import PACKAGED_FILES, git_state, write_outputs

    dataset = load_prepared(layout.PREPARED)
    provenance = {
        **git_state(Path(__file__).resolve().parents[1]),
        "params_sha256": file_sha256(args.params),
        "dataset_fingerprint": dataset.fingerprint(),
        "dataset_dir": dataset.dataset_dir,
        "note": "git state when the package stage last ran",
    }
    out = Path(params.output.dir)
    metrics = read_json_file(layout.EVALUATION, "evaluate")
    write_outputs(out, layout.EXPORT_MODEL, dataset.classes, metrics,
                  read_json_file(layout.THRESHOLDS, "thresholds"), provenance)
    print(f"package: wrote {', '.join(PACKAGED_FILES)} to {out}/")
    print(f"test (INT8, adopted thresholds): macro-F1 {metrics['f1_macro']:.4f}, micro-F1 "
          f"{metrics['f1_micro']:.4f}, precision {metrics['precision_macro']:.4f}, recall "
          f"{metrics['recall_macro']:.4f}")


if __name__ == "__main__":
    run_main(main)
