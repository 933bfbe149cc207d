"""Stage ptq_baseline: the float student quantised after training, as Model Maker does.

Converts the float student (models/student, before QAT) to full INT8 by post-training
quantisation, with the same representative training images, the same I/O contract and the same
checks as export. Writes models/ptq/model_ptq_int8.tflite and models/ptq/export.json (its
contract facts). Stage compare_quantization tunes and scores it.
Reads params: seed, export.representative_samples.
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
    parser.add_argument("--out", default=str(layout.PTQ_MODEL))
    args = parser.parse_args()
    params = load_params(args.params)
    import numpy as np

    from stages.common.data.dataset import load_prepared
    from stages.common.data.tfrecord_shards import Shards
    from stages.common.models.trained_models import load_trained
    from stages.common.quantization.int8_export import export_ptq_int8, representative_indices
    from stages.common.quantization.int8_outputs import CHUNK

    dataset = load_prepared(layout.PREPARED)
    shards = Shards.open(layout.SHARDS, dataset)
    student, meta = load_trained(layout.STUDENT)
    shards.require_size("student", meta["input_size"], "the float student")
    chosen = representative_indices(params.export.representative_samples,
                                    shards.count("train"), params.seed)
    pixels = np.concatenate(list(shards.pixel_chunks("train", "student", CHUNK, indices=chosen)))
    print(f"ptq_baseline: converting the float student with {len(pixels)} representative "
          "images...", flush=True)
    facts = export_ptq_int8(student, pixels, args.out)
    write_json(Path(args.out).with_name("export.json"), facts)
    print(f"ptq_baseline: {args.out} ({facts['file_bytes'] / 1e6:.2f} MB), input "
          f"{facts['input']['shape']} scale {facts['input']['scale']} zero point "
          f"{facts['input']['zero_point']}")


if __name__ == "__main__":
    run_main(main)
