"""Letterbox one image exactly as the pipeline and the phone do, and save it as PNG.

Example: python -m tools.letterbox photo.jpg photo_240.png --size 240
The PNG holds the RGB bytes the model sees (before normalisation); compare it with the phone's.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core.command_line import add_max_image_pixels, require_positive, stage_parser
from stages.common.core.errors import UserError, run_main
from stages.common.data.image_files import DEFAULT_MAX_IMAGE_PIXELS, read_image_file, save_rgb_png
from stages.common.data.preprocessing import letterbox, letterbox_geometry


def main() -> None:
    parser = stage_parser(__doc__, params=False)
    parser.add_argument("image", help="input image (jpg, png, ...)")
    parser.add_argument("out", help="output PNG")
    parser.add_argument(
        "--size", type=int, default=240, help="square side S (default: %(default)s)"
    )
    add_max_image_pixels(parser, DEFAULT_MAX_IMAGE_PIXELS)
    args = parser.parse_args()
    require_positive(args, "size", "max_image_pixels")
    try:
        image = read_image_file(args.image, args.max_image_pixels)
    except UserError as error:
        raise UserError(f"{args.image}: {error}") from None
    if not args.out.lower().endswith(".png"):
        raise UserError(f"{args.out}: the output must be a .png file (lossless)")
    folder = Path(args.out).parent
    if not folder.is_dir():
        raise UserError(f"{folder}: output folder not found (create it first)")
    boxed = letterbox(image, args.size)
    try:
        save_rgb_png(args.out, boxed)
    except OSError as error:
        raise UserError(f"{args.out}: cannot be written: {error.strerror or error}") from None
    new_h, new_w, top, left = letterbox_geometry(image.shape[0], image.shape[1], args.size)
    print(f"{args.image}: {image.shape[0]}x{image.shape[1]} (h x w) -> content {new_h}x{new_w} "
          f"at top={top}, left={left} in {args.size}x{args.size}; wrote {args.out}")


if __name__ == "__main__":
    run_main(main)
