#!/usr/bin/env python
"""Stage train_student: EfficientNet-Lite B1 student at student.input_size (240), distilled.

Phase head: classifier warm-up on hard labels. Then the teacher check: the teacher's val
macro-F1 against the head-phase student's, with a WARNING if the teacher is no better.
Phase finetune: top student.unfreeze_fraction of the backbone, loss
alpha * BCE(y, s) + (1 - alpha) * T^2 * BCE(sigmoid(t / T), sigmoid(s / T)) against the frozen
teacher from models/teacher.
Reads params: seed, student.*, distillation.*, augmentation.*. Writes models/student,
metrics/student.json and live curves in dvclive/train_student. Resumable like train_teacher.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.common.arguments import add_shards, stage_parser  # noqa: E402
from stages.common.errors import run_main  # noqa: E402
from stages.common.params import load_params  # noqa: E402


def main() -> None:
    parser = stage_parser(__doc__)
    add_shards(parser)
    args = parser.parse_args()
    params = load_params(args.params)
    from stages.common.trainers import StagePaths, train_student  # TensorFlow loads here

    paths = StagePaths(shards=args.shards, out=Path("models/student"),
                       metrics=Path("metrics/student.json"), live=Path("dvclive/train_student"),
                       checkpoints=Path("models/checkpoints/train_student"))
    metrics = train_student(params, paths)
    check = metrics["teacher_check"]
    warned = not check["teacher_is_better"] and check["distillation_alpha"] < 1.0
    print(f"train_student: val macro-F1 {metrics['val_f1_macro']:.4f} at 0.5 "
          f"(teacher {check['teacher_val_f1_macro_at_0.5']:.4f}"
          f"{', not better than the head-phase student: see the WARNING above' if warned else ''}"
          f", all-negative "
          f"{metrics['baselines']['f1_macro_all_negative']:.4f}, all-positive "
          f"{metrics['baselines']['f1_macro_all_positive']:.4f}); {metrics['wall_time_s']:.0f} s")


if __name__ == "__main__":
    run_main(main)
