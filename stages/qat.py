"""Stage qat: quantization-aware training of the whole student.

tfmot quantize_model on the trained student, fine-tuned at qat.lr for qat.epochs with the
distillation loss still active (same T and teacher; the alpha the student ended with; the
images of data/unlabelled too with distillation.use_unlabelled, while the teacher is used). Reads
params: seed, train.*, shards.shuffle_buffer, qat.*, distillation.*, student.batch_size,
augmentation.*. Writes models/qat, metrics/qat.json and live curves in dvclive/qat. Resumable
like the training stages.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core.command_line import add_shards, stage_parser
from stages.common.core.errors import run_main
from stages.common.core.params import load_params


def main() -> None:
    parser = stage_parser(__doc__)
    add_shards(parser)
    args = parser.parse_args()
    params = load_params(args.params)
    # TensorFlow loads here
    from stages.common.training.driver import train
    from stages.common.training.recipes.qat import QAT

    metrics = train(QAT, params, QAT.paths(args.shards))
    before = metrics["float_student_before_qat"]["val_f1_macro"]
    print(f"qat: val macro-F1 {metrics['val_f1_macro']:.4f} at 0.5 (float student before QAT "
          f"{before:.4f}); {metrics['wall_time_s']:.0f} s")


if __name__ == "__main__":
    run_main(main)
