#!/usr/bin/env python
"""Stage report: the run's visual report, reports/report.html (self-contained) and
reports/report.png (one-page overview), drawn from the metrics and curves the other stages wrote.

Ends by printing where the five outputs and the report are, and the headline test metrics.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.common.arguments import stage_parser  # noqa: E402
from stages.common.errors import run_main  # noqa: E402
from stages.common.params import load_params  # noqa: E402


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="reports", help="folder for report.html and report.png")
    args = parser.parse_args()
    output_dir = Path(load_params(args.params)["output"]["dir"])
    from stages.common.report import RunFiles, build_report, headline, write_report

    report = build_report(RunFiles(), title=f"Run report: {output_dir}")
    write_report(report, Path(args.out))
    print(headline(output_dir, Path(args.out)))


if __name__ == "__main__":
    run_main(main)
