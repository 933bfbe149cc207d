"""Time-to-quality of whole pipeline runs (docs/benchmark.md). Not a pipeline stage.

    dvc exp run -n fast ... 2>&1 | python -m tools.time_to_quality stamp > fast.log
    python -m tools.time_to_quality chart --out docs/time_to_quality.png fast=fast.log seed=seed.log
    python -m tools.time_to_quality chart --out chart.png distilled=teacher.log+student.log

stamp: copies its input, each line prefixed by the seconds since it started.
chart: one line per run (LABEL=LOG) of the shipped model's val macro-F1 against wall time. A run
made in parts (its teacher trained by one command, the rest by another with the teacher cached):
LABEL=PART1.log+PART2.log, each part's times counted from where the one before it ended.
"""
import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core.errors import UserError, read_utf8, run_main
from stages.common.evaluation.time_to_quality import chart, read_run, stamp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stamp", help="prefix each line of stdin with the seconds since start")
    drawing = commands.add_parser("chart", help="draw the runs' curves into a PNG")
    drawing.add_argument("runs", nargs="+", metavar="LABEL=LOG[+LOG...]")
    drawing.add_argument("--out", required=True, help="the PNG to write")
    drawing.add_argument("--title", default="val macro-F1 against wall time")
    args = parser.parse_args()
    if args.command == "stamp":
        stamp(sys.stdin, sys.stdout)
        return
    curves = {}
    for run in args.runs:
        label, separator, log = run.partition("=")
        if not separator or not label or not log:
            raise UserError(f"{run}: expected LABEL=LOG (for example fast=fast.log)")
        curve = read_run(read_utf8(Path(part), "give the log of a stamped run")
                         for part in log.split("+"))
        if not curve.points:
            raise UserError(f"{log}: no stamped epoch line (make it with: dvc exp run ... 2>&1 | "
                            "python -m tools.time_to_quality stamp > LOG)")
        curves[label] = curve
    Path(args.out).write_bytes(chart(curves, args.title))
    print(f"time-to-quality chart of {len(curves)} run(s) written to {args.out}")


if __name__ == "__main__":
    run_main(main)
