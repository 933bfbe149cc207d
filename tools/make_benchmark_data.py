"""Write the hard benchmark (handwritten digits on photographs) to a dataset folder.

Not a pipeline stage: the demo never uses it. Reads params: benchmark_data.* (sizes, images
without labels and seed); --seed overrides the seed, so that two seeds of the benchmark sit side
by side:

    python -m tools.make_benchmark_data --seed 1 --out data/hard_s1
    dvc exp run -S data.dir=data/hard_s1 ...
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core.command_line import stage_parser
from stages.common.core.errors import run_main
from stages.common.core.output_folders import replaced_folder
from stages.common.core.params import load_params
from stages.common.data.hard_benchmark import write_benchmark_dataset


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="output folder (replaced whole)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the benchmark's seed (default: benchmark_data.seed)")
    args = parser.parse_args()
    settings = load_params(args.params).benchmark_data
    seed = settings.seed if args.seed is None else args.seed
    if seed < 0:
        parser.error("--seed: an integer >= 0")
    out = Path(args.out)
    counts = {"train": settings.train_images, "val": settings.val_images,
              "test": settings.test_images}
    with replaced_folder(out, what="a benchmark dataset written by this script") as staging:
        written = write_benchmark_dataset(staging, counts, seed, settings.unlabelled_images)
    print(f"hard benchmark (seed {seed}) written to {out}: "
          + ", ".join(f"{n} {s}" for s, n in written.items()))


if __name__ == "__main__":
    run_main(main)
