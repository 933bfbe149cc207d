"""Decode images as the pipeline does and write them as binary PPM (P6), for the C app.

Example: python -m tools.decode_to_ppm decoded/ photo1.jpg photo2.png
Writes decoded/photo1.ppm and decoded/photo2.ppm: upright RGB, EXIF orientation applied, exactly
the pixels the pipeline letterboxes. On the phone, decoding belongs to the platform; this gives
stages/c_reference/classify the same input the Python side had. An image that cannot be decoded
gets its own error line and exit status 1; the others are still written.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core.command_line import add_max_image_pixels, require_positive, stage_parser
from stages.common.core.errors import UserError, run_main
from stages.common.data.image_files import DEFAULT_MAX_IMAGE_PIXELS, encode_ppm, read_image_file


def main() -> int:
    parser = stage_parser(__doc__, params=False)
    parser.add_argument("out_dir", help="folder for the .ppm files (it must exist)")
    parser.add_argument("images", nargs="+", help="images to decode (jpg, png, ...)")
    add_max_image_pixels(parser, DEFAULT_MAX_IMAGE_PIXELS)
    args = parser.parse_args()
    require_positive(args, "max_image_pixels")
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise UserError(f"{out_dir}: output folder not found (create it first)")
    targets = {}
    for image in args.images:
        target = out_dir / (Path(image).stem + ".ppm")
        if target in targets:
            raise UserError(f"{image} and {targets[target]} would both be written to {target}; "
                            "decode them into separate folders")
        targets[target] = image
    failures = 0
    for target, image in targets.items():
        try:
            pixels = read_image_file(image, args.max_image_pixels)
        except UserError as error:
            print(f"{image}: error: {error}")
            failures += 1
            continue
        try:
            target.write_bytes(encode_ppm(pixels))
        except OSError as error:
            raise UserError(f"{target}: cannot be written: {error.strerror or error}") from None
        print(f"{image}: {pixels.shape[1]}x{pixels.shape[0]} (w x h) -> {target}")
    return 1 if failures else 0


if __name__ == "__main__":
    run_main(main)
