"""Predict labels for images with a packaged model, using only the five outputs (as the phone).

Example: python -m tools.predict outputs/run_001 photo1.jpg photo2.png [--json]
Reads inference_config.json (input size, thresholds in int8 units), labels.txt and
model_qat_int8.tflite, and refuses them unless they are valid and belong together; decodes and
letterboxes each image with the documented rules, feeds the raw uint8 pixels, and predicts
class i when its int8 output reaches its int8 threshold. An image that cannot be classified
gets its own error line and exit status 1; the other images still get their results.
"""
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core.command_line import add_max_image_pixels, require_positive, stage_parser
from stages.common.core.errors import UserError, run_main
from stages.common.data.image_files import DEFAULT_MAX_IMAGE_PIXELS


def main() -> int:
    parser = stage_parser(__doc__, params=False)
    parser.add_argument("output_dir", help="folder with the five outputs of the pipeline")
    parser.add_argument("images", nargs="+", help="images to classify")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    add_max_image_pixels(parser, DEFAULT_MAX_IMAGE_PIXELS)
    args = parser.parse_args()
    require_positive(args, "max_image_pixels")
    from stages.common.deployment.predictor import Predictor

    predictor = Predictor.load(args.output_dir, args.max_image_pixels)
    results = []
    for image in args.images:
        try:
            results.append(predictor.predict_file(image))
        except UserError as error:
            results.append({"image": image, "error": str(error)})
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        for result in results:
            if "error" in result:
                print(f"{result['image']}: error: {result['error']}")
                continue
            found = ", ".join(f"{label['class']} ({label['probability']:.2f})"
                              for label in result["labels"]) or "(no label)"
            print(f"{result['image']}: {found}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    run_main(main)
