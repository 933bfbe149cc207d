"""Benchmark, with params.yaml's models, sizes, batch and distillation settings: input pipeline
vs train step, distillation vs plain epoch, INT8 vs float TFLite latency and size, the C app
against the Python interpreter on the packaged model (when output.dir holds one), and
`dvc repro` with nothing to do; prints a Markdown table with the targets and writes the numbers
to --out (default metrics/benchmark.json). Not a pipeline stage: run it on
a quiet machine. The same command runs on a GPU machine (training parts use the GPU).

    python -m tools.benchmark [--images 192] [--out metrics/benchmark.json]
"""
import json
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import require_positive, stage_parser
from stages.common.core.errors import run_main
from stages.common.core.json_files import write_json
from stages.common.core.machine import machine

REPO = Path(__file__).resolve().parents[1]


def repro_nothing_to_do_seconds() -> float | None:
    """Time of `dvc repro` when `dvc status` says everything is up to date (else None: a real
    repro would start training)."""
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=REPO,
                            capture_output=True, text=True)
    if status.returncode != 0 or json.loads(status.stdout or "{}"):
        return None
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=REPO, check=True,
                   capture_output=True)
    return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--images", type=int, default=192, help="synthetic training images")
    parser.add_argument("--out", type=Path, default=layout.BENCHMARK)
    parser.add_argument("--option_passes", type=int, default=4,
                        help="teacher_passes timed as the option when params.yaml ships 0 "
                             "(default: %(default)s)")
    args = parser.parse_args()
    require_positive(args, "images", "option_passes")
    from stages.common.benchmarking.performance import run_benchmark, table
    from stages.common.core.params import load_params
    from stages.common.deployment.deliverables import CONFIG_FILE

    params = load_params(args.params)
    packaged = Path(params.output.dir)
    if not (packaged / CONFIG_FILE).is_file():
        print(f"note: {packaged} holds no packaged model (run the pipeline first), so the C app "
              "is not timed")
        packaged = None
    results = run_benchmark(params, images=args.images, packaged_dir=packaged,
                            option_passes=args.option_passes)
    results["repro_nothing_to_do_s"] = repro_nothing_to_do_seconds()
    if results["repro_nothing_to_do_s"] is None:
        print("note: the pipeline is not up to date (dvc status), so `dvc repro` was not timed")
    results["machine"] = machine()
    write_json(args.out, results)
    print(table(results))
    print(f"devices: {', '.join(results['devices'])}; CPU: {results['machine']['cpu_model']} "
          f"({results['machine']['cpu_count']} cores); numbers in {args.out}")


if __name__ == "__main__":
    run_main(main)
