"""Stage train_teacher: the teacher (teacher.architecture: EfficientNet-B0..B7, or Lite2 with
ImageNet weights from models/pretrained) at teacher.input_size, two phases.

Reads params: seed, train.*, shards.shuffle_buffer, teacher.*,
augmentation.*. Reads data/prepared. Writes models/teacher
(weights.h5, model.json), metrics/teacher.json and live curves in dvclive/train_teacher.
A killed run started again continues from its last finished epoch.
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
    from stages.common.training.recipes.teacher import TEACHER

    metrics = train(TEACHER, params, TEACHER.paths(args.shards))
    print(f"train_teacher: val macro-F1 {metrics['val_f1_macro']:.4f} at 0.5 "
          f"(all-negative {metrics['baselines']['f1_macro_all_negative']:.4f}, all-positive "
          f"{metrics['baselines']['f1_macro_all_positive']:.4f}); {metrics['wall_time_s']:.0f} s")


if __name__ == "__main__":
    run_main(main)
