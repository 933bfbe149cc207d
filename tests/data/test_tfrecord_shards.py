"""The shards: the same pixels streamed back (raw and PNG), shuffled by seed; shards of another
dataset version refused."""

import numpy as np
import pytest
from helpers.in_memory import letterbox_split, validated_records

from stages.common.core.errors import UserError
from stages.common.data.demo_data import write_demo_dataset


def test_shards_stream_the_same_pixels_and_shuffle_by_seed(tiny_dataset, tmp_path):
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = validated_records(tiny_dataset)
    write_shards(dataset, tmp_path / "shards", {"student": 48, "teacher": 64}, images_per_shard=5)
    assert len(list((tmp_path / "shards").glob("train-*.tfrecord"))) == 3  # 12 images, 5 a shard
    shards = Shards.open(tmp_path / "shards", dataset)
    for view, size in (("student", 48), ("teacher", 64)):
        pixels, boxes = letterbox_split(dataset.dataset_dir, dataset.splits["train"], size)
        streamed = list(shards.records("train", [view]).as_numpy_iterator())
        np.testing.assert_array_equal(np.stack([element[0][0] for element in streamed]), pixels)
        np.testing.assert_array_equal(np.stack([element[1][0] for element in streamed]), boxes)
    np.testing.assert_array_equal(
        np.stack([element[2] for element in streamed]), np.array(dataset.targets("train")))
    assert [int(element[3]) for element in streamed] == list(range(12))
    chosen = np.concatenate(list(shards.pixel_chunks("train", "student", 2, indices=[1, 7])))
    np.testing.assert_array_equal(chosen, letterbox_split(
        dataset.dataset_dir, [dataset.splits["train"][i] for i in (1, 7)], 48)[0])

    def order(seed):
        data = shards.records("train", ["student"], shuffle_buffer=4, seed=seed)
        return ([int(element[3]) for element in data.as_numpy_iterator()],
                [int(element[3]) for element in data.as_numpy_iterator()])

    first, second = order(1)
    assert sorted(first) == sorted(second) and first != second  # every image, a new order per epoch
    assert order(1) == (first, second)  # seeded


def test_png_shards_hold_the_same_pixels(tiny_dataset, tmp_path):
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = validated_records(tiny_dataset)
    streamed = {}
    for encoding in ("raw", "png"):
        write_shards(dataset, tmp_path / encoding, {"student": 48}, encoding=encoding)
        streamed[encoding] = np.concatenate(list(Shards.open(tmp_path / encoding).pixel_chunks(
            "val", "student")))
    np.testing.assert_array_equal(streamed["png"], streamed["raw"])
    assert streamed["raw"].shape == (6, 48, 48, 3)


def test_shards_of_another_dataset_version_are_refused(tiny_dataset, tmp_path):
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.tfrecord_shards import Shards, write_shards

    write_shards(validated_records(tiny_dataset), tmp_path / "shards", {"student": 48})
    write_demo_dataset(tmp_path / "other", {"train": 12, "val": 6, "test": 6}, seed=9)
    with pytest.raises(UserError, match="another version of the prepared data"):
        Shards.open(tmp_path / "shards", validate_dataset(tmp_path / "other", max_pixels=10**7))
    with pytest.raises(UserError, match="run the shards stage first"):
        Shards.open(tmp_path / "nowhere")


def test_two_runs_on_the_same_images_write_the_same_bytes(tiny_dataset, tmp_path):
    """DVC hashes the shards' files: a rerun of the stage on unchanged data must give the same
    bytes, or everything downstream, the teacher included, trains again. Each run in a process
    of its own, as the stage runs (the order of a protobuf map can differ between processes)."""
    import hashlib
    import subprocess
    import sys

    script = ("import sys, stages\n"
              "from stages.common.data.dataset_validation import validate_dataset\n"
              "from stages.common.data.tfrecord_shards import write_shards\n"
              "write_shards(validate_dataset(sys.argv[1], max_pixels=10**7), sys.argv[2], "
              "{'student': 24, 'teacher': 32})\n")
    digests = []
    for run in range(3):
        subprocess.run([sys.executable, "-c", script, str(tiny_dataset / "data"),
                        str(tmp_path / f"run{run}")], check=True, capture_output=True)
        digests.append({path.name: hashlib.sha256(path.read_bytes()).hexdigest()
                        for path in sorted((tmp_path / f"run{run}").iterdir())})
    assert len(digests[0]) == 4 and digests[0] == digests[1] == digests[2]
