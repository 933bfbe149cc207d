"""Building the phone's C app (stages/c_reference) for the tests, and images of many shapes
to run it on."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from stages.common.data.dataset import IMAGES_FOLDER
from stages.common.data.preprocessing import decode_image

REPO = Path(__file__).resolve().parents[2]
C_DIR = REPO / "stages" / "c_reference"


SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def compiler() -> str:
    compiler = shutil.which("cc")
    assert compiler, "the C app needs the system C compiler `cc` on PATH (install gcc or clang)"
    assert shutil.which("make"), "the C app is built with `make`: install it"
    return compiler


def make(target: str, out: Path) -> None:
    result = subprocess.run(["make", "-C", str(C_DIR), f"OUT={out}", f"PYTHON={sys.executable}",
                             target], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def sanitizers_work(tmp_path: Path) -> bool:
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    return subprocess.run([compiler(), *SANITIZE, str(probe), "-o", str(tmp_path / "probe")],
                          capture_output=True).returncode == 0


def split_paths(dataset, split: str) -> list[Path]:
    return [Path(dataset.dataset_dir) / IMAGES_FOLDER / record.name
            for record in dataset.splits[split]]


def varied_images(dataset, root: Path, count: int = 54) -> list[Path]:
    """Crops of the demo images at many sizes and aspect ratios (1:6 to 6:1, 9 to 700 px), as
    PNG, and some as JPEG whose EXIF says to rotate them (the decoder turns them upright)."""
    rng = np.random.default_rng(13)
    sources = [decode_image(path.read_bytes()) for path in split_paths(dataset, "train")]
    folder = root / "varied"
    folder.mkdir()
    images = []
    for index in range(count):
        source = sources[index % len(sources)]
        aspect = np.exp(rng.uniform(np.log(1 / 6), np.log(6)))
        long_side = int(np.exp(rng.uniform(np.log(9), np.log(700))))
        height, width = (long_side, max(1, int(long_side / aspect))) if aspect > 1 else \
            (max(1, int(long_side * aspect)), long_side)
        picture = Image.fromarray(source).resize((width, height), Image.BILINEAR)
        if index % 6 == 5:
            exif = Image.Exif()
            exif[0x0112] = 6  # shown rotated by 90 degrees
            path = folder / f"image_{index:02d}.jpg"
            picture.save(path, format="JPEG", quality=90, exif=exif)
        else:
            path = folder / f"image_{index:02d}.png"
            picture.save(path)
        images.append(path)
    return images
