"""Stage train_student: EfficientNet-Lite B1 student at student.input_size (240), distilled.

Phase head: classifier warm-up on hard labels. Then the teacher check: the teacher's val
macro-F1 against the head-phase student's, with a WARNING if the teacher is no better (or, with
distillation.if_teacher_not_better: labels, fine-tuning on the labels alone; and on them alone
from the epoch the student's val macro-F1 reaches the teacher's).
Phase finetune: top student.unfreeze_fraction of the backbone, loss
alpha * BCE(y, s) + (1 - alpha) * T^2 * BCE(sigmoid(t / T), sigmoid(s / T)) against the frozen
teacher from models/teacher. With distillation.use_unlabelled, the images of data/unlabelled
(stage unlabelled_images) join it, the teacher's sigmoid on each their hard target.
Reads params: seed, train.*, shards.shuffle_buffer, student.*, distillation.*,
augmentation.*. Writes models/student,
metrics/student.json and live curves in dvclive/train_student. Resumable like train_teacher.
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
    from stages.common.training.recipes.student import STUDENT

    metrics = train(STUDENT, params, STUDENT.paths(args.shards))
    check = metrics["teacher_check"]
    note = ""
    if not check["teacher_is_better"] and check["distillation_alpha"] < 1.0:
        note = (", not better than the head-phase student: "
                + ("fine-tuned on the labels alone" if check["if_teacher_not_better"] == "labels"
                   else "see the WARNING above"))
    print(f"train_student: val macro-F1 {metrics['val_f1_macro']:.4f} at 0.5 "
          f"(teacher {check['teacher_val_f1_macro_at_0.5']:.4f}{note}, all-negative "
          f"{metrics['baselines']['f1_macro_all_negative']:.4f}, all-positive "
          f"{metrics['baselines']['f1_macro_all_positive']:.4f}); {metrics['wall_time_s']:.0f} s")


if __name__ == "__main__":
    run_main(main)
