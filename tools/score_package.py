"""Score a packaged model on a labelled split, as the phone would decide; optionally against
another package on the same images, with a paired bootstrap interval of the difference.

    python -m tools.score_package outputs/run_001 data/hard_s1 [--split test] [--json]
    python -m tools.score_package run_a/ data/hard_s1 --against run_b/

DATASET is a folder in the pipeline's dataset format (images/ and <split>.txt). The decisions come
from the five outputs alone (tools.predict's), so a split the pipeline never saw, such as a
larger test set (tools.make_benchmark_data with more test_images), measures the shipped model.
Every image must be scored: a bad line, an unknown label or an unreadable image stops it with its
file and line. Not a pipeline stage.
"""
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core.command_line import add_max_image_pixels, require_positive, stage_parser
from stages.common.core.errors import UserError, run_main
from stages.common.data.image_files import DEFAULT_MAX_IMAGE_PIXELS


def main() -> None:
    parser = stage_parser(__doc__, params=False)
    parser.add_argument("output_dir", help="folder with the five outputs of the pipeline")
    parser.add_argument("dataset", help="dataset folder: images/ and the split file")
    parser.add_argument("--split", default="test", help="split file to score (default: test)")
    parser.add_argument("--against", help="a second output folder, compared on the same images")
    parser.add_argument("--resamples", type=int, default=2000,
                        help="bootstrap resamples for --against (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    add_max_image_pixels(parser, DEFAULT_MAX_IMAGE_PIXELS)
    args = parser.parse_args()
    require_positive(args, "max_image_pixels", "resamples")
    from stages.common.deployment.predictor import Predictor
    from stages.common.evaluation.package_scoring import (
        package_decisions,
        read_labelled_split,
        split_scores,
        truth_matrix,
    )
    from stages.common.scoring.metrics import paired_bootstrap

    split = read_labelled_split(args.dataset, args.split)
    predictor = Predictor.load(args.output_dir, args.max_image_pixels)
    classes = predictor.classes
    truth = truth_matrix(split, classes)
    packages = [predictor]
    if args.against:
        other = Predictor.load(args.against, args.max_image_pixels)
        if sorted(other.classes) != sorted(classes):
            raise UserError(f"{args.against}: its classes ({', '.join(other.classes)}) are not "
                            f"{args.output_dir}'s ({', '.join(classes)}); no comparison")
        packages.append(other)
    decisions, *other_decisions = package_decisions(packages, split, classes)
    report = {"package": args.output_dir, "split": str(split.source),
              **split_scores(truth, decisions, classes)}
    if args.against:
        report["against"] = {"package": args.against,
                             **split_scores(truth, other_decisions[0], classes),
                             "paired": paired_bootstrap(truth, decisions, other_decisions[0],
                                                        args.resamples)}
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    print(f"{args.output_dir} on {split.source} ({report['images']} images): macro-F1 "
          f"{report['f1_macro']:.4f}, micro-F1 {report['f1_micro']:.4f}")
    if args.against:
        against, paired = report["against"], report["against"]["paired"]
        low, high = paired["interval_90"]
        print(f"{args.against}: macro-F1 {against['f1_macro']:.4f}, micro-F1 "
              f"{against['f1_micro']:.4f}")
        print(f"difference {paired['difference']:+.4f}, paired 90 % interval "
              f"{low:+.4f} .. {high:+.4f} "
              f"({paired['resamples']} resamples of the images)")


if __name__ == "__main__":
    run_main(main)
