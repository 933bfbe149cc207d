"""package_scoring: each package's decisions are its own, in the classes' order, row by row; an
unreadable image stops the scoring with its line."""
import numpy as np
import pytest

from stages.common.core.errors import UserError
from stages.common.data.image_files import save_rgb_png
from stages.common.evaluation.package_scoring import (
    package_decisions,
    read_labelled_split,
    truth_matrix,
)

CLASSES = ["cat", "dog", "fox"]


class ByRedLevel:
    """Decides from the image alone, so that each row's decisions can be told apart: the classes
    named in ``choices[the red level of its first pixel]``, in any order."""

    max_image_pixels = 10_000

    def __init__(self, choices: dict[int, list[str]]):
        self.choices = choices

    def predict_image(self, image):
        return {"labels": [{"class": name} for name in self.choices[int(image[0, 0, 0])]]}


def _dataset(tmp_path, red_levels, test_lines):
    images = tmp_path / "images"
    images.mkdir()
    for red in red_levels:
        pixels = np.zeros((4, 6, 3), np.uint8)
        pixels[..., 0] = red
        save_rgb_png(images / f"r{red}.png", pixels)
    (tmp_path / "test.txt").write_text("".join(f"{line}\n" for line in test_lines))
    return tmp_path


def test_two_packages_keep_their_own_decisions_row_by_row(tmp_path):
    dataset = _dataset(tmp_path, [10, 20, 30], ["r10.png,cat", "r20.png,dog|fox", "r30.png"])
    split = read_labelled_split(dataset, "test")
    first = ByRedLevel({10: ["cat"], 20: ["fox"], 30: []})
    second = ByRedLevel({10: ["dog", "cat"], 20: [], 30: ["fox"]})

    ours, theirs = package_decisions([first, second], split, CLASSES)

    np.testing.assert_array_equal(ours, [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(theirs, [[1, 1, 0], [0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(truth_matrix(split, CLASSES),
                                  [[1, 0, 0], [0, 1, 1], [0, 0, 0]])


def test_an_unreadable_image_stops_the_scoring_with_its_line(tmp_path):
    dataset = _dataset(tmp_path, [10], ["r10.png,cat", "", "broken.png,dog"])
    (dataset / "images" / "broken.png").write_bytes(b"not an image")
    split = read_labelled_split(dataset, "test")
    with pytest.raises(UserError, match=r"test\.txt:3: broken\.png: "):
        package_decisions([ByRedLevel({10: ["cat"]})], split, CLASSES)
