"""Stage prepare: parse and validate the dataset, build the vocabulary, report statistics.

Reads params: data.dir, num_classes, prepare.*. Writes data/prepared/ (labels.txt, dataset.json
with every valid image's labels, content hash and size, {train,val,test}.csv with label vectors,
defects.txt), whole (beside it, then swapped in), and metrics/data_report.json. Exits with
status 2 and the full list of defects (split file, line, reason) if the dataset has any and
prepare.on_defect is 'fail'.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser
from stages.common.core.errors import run_main
from stages.common.core.json_files import write_json
from stages.common.core.params import check_num_classes, load_params
from stages.common.data.dataset import write_prepared
from stages.common.data.dataset_statistics import dataset_report, format_summary
from stages.common.data.dataset_validation import validate_dataset


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default=str(layout.PREPARED),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--report", default=str(layout.DATA_REPORT),
                        help="statistics file (default: %(default)s)")
    args = parser.parse_args()
    params = load_params(args.params)
    settings = params.prepare
    dataset = validate_dataset(params.data.dir, settings.max_image_pixels,
                               settings.on_defect, settings.workers)
    check_num_classes(params, len(dataset.classes), args.params)
    report = dataset_report(dataset)

    write_prepared(args.out, dataset)
    report_path = Path(args.report)
    write_json(report_path, report, ensure_ascii=False)
    print(format_summary(dataset, report))


if __name__ == "__main__":
    run_main(main)
