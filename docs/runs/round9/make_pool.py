"""Probe helper (ninth round): N more images of benchmark seed SEED for the unlabelled pool,
drawn like its training images and from its training split's handwritten samples only (a pool
from another seed would reuse samples of this seed's val and test splits), with another
random stream. Writes OUT/pool_XXXX.jpg and OUT/pool.txt (names, no labels: the labels the
generator knows are not written anywhere).

    python make_pool.py SEED N OUT
"""
import sys
from pathlib import Path

import cv2
import numpy as np

from stages.common.data.hard_benchmark import load_digit_pools, load_photos, make_benchmark_image


def main() -> None:
    seed, count, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    photos, samples = load_photos(), load_digit_pools(seed)["train"]
    rng = np.random.default_rng([seed, 2, 1000])  # the splits' streams are [seed, 2, 0..2]
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        image, _, quality = make_benchmark_image(photos, samples, rng)
        name = f"pool_{index:04d}.jpg"
        ok, encoded = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, name
        (out / name).write_bytes(encoded.tobytes())
        names.append(f"{name},")
    (out / "pool.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"{count} pool images of benchmark seed {seed} in {out}")


if __name__ == "__main__":
    main()
