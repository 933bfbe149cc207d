"""Stage shards: every image of every split decoded and letterboxed once, at the student's and
the teacher's input size, into sharded TFRecord files, data/shards/ (raw pixels by default,
lossless PNG with shards.encoding: png).
Reads params: shards.images_per_shard, shards.encoding, prepare.workers, student.input_size,
teacher.input_size.

Training, export, threshold tuning and evaluation stream these files, so memory stays bounded
by the shuffle buffer however large the dataset is.
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
    parser.add_argument("--out", default=str(layout.SHARDS))
    args = parser.parse_args()
    params = load_params(args.params)
    import time

    from stages.common.data.dataset import load_prepared
    from stages.common.data.tfrecord_shards import write_shards

    started = time.monotonic()
    dataset = load_prepared(args.prepared)
    sizes = {"student": params.student.input_size, "teacher": params.teacher.input_size}
    manifest = write_shards(dataset, args.out, sizes, params.shards.images_per_shard,
                            params.prepare.workers, params.shards.encoding)
    total_bytes = sum(path.stat().st_size for path in Path(args.out).glob("*.tfrecord"))
    print(f"shards: {sum(manifest['counts'].values())} images at {sizes} px in {args.out}/ "
          f"({total_bytes / 1e6:.1f} MB, {time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    run_main(main)
