"""Stage report: the run's visual report, reports/report.html (self-contained) and
reports/report.png (one-page overview), drawn from the metrics and curves the other stages wrote.

Ends by printing where the five outputs and the report are, and the headline test metrics.
Reads params: output.dir.
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
    parser.add_argument("--out", default=str(layout.REPORTS),
                        help="folder for report.html and report.png")
    args = parser.parse_args()
    output_dir = Path(load_params(args.params).output.dir)
    from stages.common.evaluation.report import build_report, headline, write_report
    from stages.common.evaluation.run_results import RunFiles

    report = build_report(RunFiles(), title=f"Run report: {output_dir}")
    write_report(report, Path(args.out))
    print(headline(output_dir, Path(args.out)))


if __name__ == "__main__":
    run_main(main)
