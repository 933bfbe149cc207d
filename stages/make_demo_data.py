"""Stage demo_data: write the embedded synthetic demo dataset to data/demo.

Reads params: demo_data.*. The default data.dir points at its output, so the pipeline runs on a
fresh machine without a user dataset.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser
from stages.common.core.errors import run_main
from stages.common.core.output_folders import replaced_folder
from stages.common.core.params import load_params
from stages.common.data.demo_data import write_demo_dataset


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default=str(layout.DEMO_DATA),
                        help="output folder (default: %(default)s)")
    args = parser.parse_args()
    settings = load_params(args.params).demo_data
    out = Path(args.out)
    counts = {"train": settings.train_images, "val": settings.val_images,
              "test": settings.test_images}
    # replaced whole: a stale image from a larger earlier run must not linger
    with replaced_folder(out, what="a demo dataset written by this stage") as staging:
        written = write_demo_dataset(staging, counts, settings.seed)
    print(f"demo dataset written to {out}: " + ", ".join(f"{n} {s}" for s, n in written.items()))


if __name__ == "__main__":
    run_main(main)
