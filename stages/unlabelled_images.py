"""Stage unlabelled_images: the images of the dataset's optional unlabelled.txt (one image name
per line, no labels), checked like the split files' images and against them (a copy of a
labelled image is a defect), then letterboxed at the student's and the teacher's input size into
data/unlabelled/ (TFRecord shards, as the shards stage writes them; empty without the file).
Reads params: data.dir, prepare.*, shards.images_per_shard, shards.encoding, student.input_size,
teacher.input_size.

Only the student's distilling phases read them, with distillation.use_unlabelled: the teacher
labels each augmented view. Apart from the shards stage so that adding unlabelled images leaves
the teacher's stage as it was.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser
from stages.common.core.errors import run_main
from stages.common.core.params import load_params


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--prepared", default=str(layout.PREPARED))
    parser.add_argument("--out", default=str(layout.UNLABELLED))
    args = parser.parse_args()
    params = load_params(args.params)
    import time

    from stages.common.data.dataset import UNLABELLED, UNLABELLED_FILE, load_prepared
    from stages.common.data.tfrecord_shards import write_shards
    from stages.common.data.unlabelled_images import read_unlabelled

    started = time.monotonic()
    labelled = load_prepared(args.prepared)
    settings = params.prepare
    pool = read_unlabelled(params.data.dir, labelled, settings.max_image_pixels,
                           settings.on_defect, settings.workers)
    sizes = {"student": params.student.input_size, "teacher": params.teacher.input_size}
    write_shards(pool, args.out, sizes, params.shards.images_per_shard, settings.workers,
                 params.shards.encoding, labelled_fingerprint=labelled.fingerprint())
    count = len(pool.splits[UNLABELLED])
    source = Path(params.data.dir) / UNLABELLED_FILE
    if pool.defects:
        print(f"skipped {len(pool.defects)} defective line(s) of {source} "
              "(prepare.on_defect: skip):")
        for defect in pool.defects:
            print(f"  {defect}")
    listed = f"from {source}" if source.is_file() else f"({source} not found: none listed)"
    print(f"unlabelled_images: {count} image(s) without labels {listed} at {sizes} px in "
          f"{args.out}/ ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    run_main(main)
