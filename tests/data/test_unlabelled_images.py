"""Images without labels (unlabelled.txt): checked like the split files' images and against them,
sharded apart, and read as more training images whose targets the teacher gives (NaN here)."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.in_memory import letterbox_split

from stages.common.core.errors import UserError
from stages.common.data.dataset_validation import validate_dataset
from stages.common.data.unlabelled_images import read_unlabelled

REPO = Path(__file__).resolve().parents[2]
LABELLED = {"train": "a.png,cat\nb.png,dog|cat\nc.png,\n", "val": "d.png,dog\n",
            "test": "e.png,cat\n"}


def _png(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def _dataset(root: Path, unlabelled: str | None, extra_images: dict | None = None) -> Path:
    """A five-image labelled dataset, images p0.png..p5.png for the pool, and ``unlabelled``
    as unlabelled.txt (None: no such file)."""
    images = {name: _png(i) for i, name in enumerate("abcde")}
    images = {f"{name}.png": data for name, data in images.items()}
    images.update({f"p{i}.png": _png(100 + i) for i in range(6)})
    images.update(extra_images or {})
    (root / "images").mkdir(parents=True)
    for name, data in images.items():
        (root / "images" / name).write_bytes(data)
    for split, text in LABELLED.items():
        (root / f"{split}.txt").write_text(text)
    if unlabelled is not None:
        (root / "unlabelled.txt").write_text(unlabelled)
    return root


def _read(root: Path, on_defect: str = "fail"):
    labelled = validate_dataset(root, max_pixels=10_000)
    return labelled, read_unlabelled(root, labelled, 10_000, on_defect, workers=2)


def test_the_listed_images_are_read_with_their_size_and_content(tmp_path):
    labelled, pool = _read(_dataset(tmp_path, "p0.png\n\n  p1.png ,\r\np2.png"))
    assert pool.classes == labelled.classes == ["cat", "dog"]
    records = pool.splits["unlabelled"]
    assert [r.name for r in records] == ["p0.png", "p1.png", "p2.png"]
    assert all(r.labels == [] and (r.height, r.width) == (12, 16) for r in records)
    assert pool.targets("unlabelled") == [[0, 0]] * 3
    assert pool.fingerprint() == _read(tmp_path)[1].fingerprint()
    (tmp_path / "unlabelled.txt").write_text("p0.png\np1.png\n")
    assert pool.fingerprint() != _read(tmp_path)[1].fingerprint()


def test_no_unlabelled_txt_is_no_image(tmp_path):
    assert _read(_dataset(tmp_path, None))[1].splits == {"unlabelled": []}


def test_every_defect_is_named_by_file_and_line(tmp_path):
    root = _dataset(tmp_path, "p0.png\np1.png,cat\na.png\np0.png\nmissing.png\np3.png\n"
                              "copy_of_d.png\np4.png\ncopy_of_p3.png\n",
                    {"copy_of_d.png": _png(3), "copy_of_p3.png": _png(103)})
    with pytest.raises(UserError) as caught:
        _read(root)
    message = str(caught.value)
    source = str(root / "unlabelled.txt")
    for line, problem in ((2, "has labels (cat)"), (3, "already listed in train.txt"),
                          (4, "already listed at line 1"), (5, "image not found"),
                          (7, "same bytes as 'd.png' of val.txt"),
                          (9, "same bytes as line 6 ('p3.png')")):
        assert f"{source}:{line}:" in message and problem in message, (line, problem, message)
    assert "6 defect(s)" in message and "prepare.on_defect: skip" in message


def test_skip_drops_the_defective_lines_and_keeps_them_listed(tmp_path):
    _, pool = _read(_dataset(tmp_path, "p0.png\np1.png,cat\nb.png\np2.png\n"), on_defect="skip")
    assert [r.name for r in pool.splits["unlabelled"]] == ["p0.png", "p2.png"]
    assert [(d.line, d.kind) for d in pool.defects] == [(2, "labelled_line"),
                                                         (3, "duplicate_across_splits")]


@pytest.fixture
def sharded(tmp_path):
    """(labelled dataset, pool, labelled shards, pool shards): 3 training images, then 4
    without labels."""
    from stages.common.data.tfrecord_shards import Shards, open_unlabelled, write_shards

    labelled, pool = _read(_dataset(tmp_path / "data", "p0.png\np1.png\np2.png\np3.png\n"))
    sizes = {"student": 24, "teacher": 32}
    write_shards(labelled, tmp_path / "shards", sizes, images_per_shard=2)
    write_shards(pool, tmp_path / "pool", sizes, images_per_shard=3,
                 labelled_fingerprint=labelled.fingerprint())
    return labelled, pool, Shards.open(tmp_path / "shards", labelled), open_unlabelled(
        tmp_path / "pool", labelled, sizes)


def test_they_follow_the_training_images_with_nan_targets(sharded):
    labelled, pool, shards, unlabelled = sharded
    assert shards.count("train", unlabelled) == 7 and unlabelled.count("unlabelled") == 4
    streamed = list(shards.records("train", ["student"], unlabelled=unlabelled)
                    .as_numpy_iterator())
    assert [int(element[3]) for element in streamed] == list(range(7))
    pixels = np.concatenate([
        letterbox_split(labelled.dataset_dir, labelled.splits["train"], 24)[0],
        letterbox_split(pool.dataset_dir, pool.splits["unlabelled"], 24)[0]])
    np.testing.assert_array_equal(np.stack([element[0][0] for element in streamed]), pixels)
    targets = np.stack([element[2] for element in streamed])
    np.testing.assert_array_equal(targets[:3], labelled.targets("train"))
    assert np.isnan(targets[3:]).all()
    # shuffled in among the training images, every one of them once an epoch
    data = shards.records("train", ["teacher"], shuffle_buffer=7, seed=4, unlabelled=unlabelled)
    order = [int(element[3]) for element in data.as_numpy_iterator()]
    assert sorted(order) == list(range(7)) and order != list(range(7))
    for element in data.as_numpy_iterator():
        assert np.isnan(element[2]).all() == (element[3] >= 3)
    # without them, the training split alone, as always
    alone = shards.records("train", ["student"]).as_numpy_iterator()
    assert [int(element[3]) for element in alone] == [0, 1, 2]


def test_a_pool_of_another_dataset_version_or_size_is_refused(sharded, tmp_path):
    from stages.common.data.tfrecord_shards import open_unlabelled, write_shards

    labelled, pool, _, _ = sharded
    write_shards(pool, tmp_path / "stale", {"student": 24, "teacher": 32},
                 labelled_fingerprint="0" * 64)
    with pytest.raises(UserError, match="rerun the unlabelled_images stage"):
        open_unlabelled(tmp_path / "stale", labelled)
    with pytest.raises(UserError, match="student images are 24 px"):
        open_unlabelled(tmp_path / "pool", labelled, {"student": 40})
    with pytest.raises(UserError, match="run the unlabelled_images stage first"):
        open_unlabelled(tmp_path / "nowhere", labelled)


def test_the_stage_names_a_bad_line_and_writes_an_empty_pool_without_the_file(tmp_path):
    root = _dataset(tmp_path / "data", "p0.png\np1.png,cat\n")
    (tmp_path / "params.yaml").write_text(
        (REPO / "params.yaml").read_text().replace("  dir: data/demo", f"  dir: {root}", 1))
    subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, check=True,
                   capture_output=True)
    stage = [sys.executable, "-m", "stages.unlabelled_images"]
    failed = subprocess.run(stage, cwd=tmp_path, capture_output=True, text=True)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    assert f"{root / 'unlabelled.txt'}:2: 'p1.png': has labels (cat)" in failed.stderr
    (root / "unlabelled.txt").unlink()
    done = subprocess.run(stage, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "0 image(s) without labels" in done.stdout and "not found" in done.stdout
    assert sorted(p.name for p in (tmp_path / "data" / "unlabelled").iterdir()) == [
        "manifest.json"]


def _params(**distillation):
    from stages.common.core.params import read_params
    from stages.common.core.params_schema import Params

    values = read_params(REPO / "params.yaml")
    values["distillation"].update(distillation)
    return Params.from_dict(values)


def test_the_head_phase_sees_the_labelled_images_and_the_distilling_passes_all(sharded):
    """The labels' own batches (the student's head phase) hold the 3 training images; a fixed
    teacher pass holds all 7, the teacher's logits on each, NaN targets on the 4 without labels."""
    import tensorflow as tf

    from stages.common.data.input_pipeline import distillation_data

    labelled, _, shards, unlabelled = sharded
    inputs = tf.keras.Input((32, 32, 3))
    teacher = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(
        tf.keras.layers.GlobalAveragePooling2D()(inputs)))
    params = _params()
    data = distillation_data(labelled, shards, teacher, 2, 0, params.augmentation, 8, 1, "key",
                             unlabelled=unlabelled)
    plain = np.concatenate([targets for _, targets in data.plain_train])
    assert plain.shape == (3, 2) and not np.isnan(plain).any()
    batches = list(data.distill_train.take(data.distill_steps_per_epoch))
    targets = np.concatenate([targets for _, targets in batches])
    logits = np.concatenate([inputs[1]["teacher_logits"] for inputs, _ in batches])
    assert targets.shape == (7, 2) and np.isnan(targets).all(axis=1).sum() == 4
    assert data.teacher_outputs.passes[0].shape == (7, 2) and data.unlabelled_images == 4
    # each image's logits are the pass's row of that image: the 7 rows, each once
    np.testing.assert_array_equal(np.sort(logits, axis=0),
                                  np.sort(data.teacher_outputs.passes[0], axis=0))


def test_the_stages_take_them_only_when_asked_and_with_a_teacher_in_use(sharded, tmp_path,
                                                                       capsys):
    from stages.common.training.driver import StagePaths, unlabelled_images

    labelled, _, _, _ = sharded
    sizes = {"student": 24, "teacher": 32}

    def paths(pool):
        return StagePaths(tmp_path, tmp_path, None, tmp_path, unlabelled=tmp_path / pool)

    assert unlabelled_images(_params(), 0.7, paths("pool"), labelled, sizes, "s") is None
    asked = _params(use_unlabelled=True)
    taken = unlabelled_images(asked, 0.7, paths("pool"), labelled, sizes, "train_student")
    assert taken.count("unlabelled") == 4
    assert "4 images without labels join the 3 training images" in capsys.readouterr().out
    assert unlabelled_images(asked, 1.0, paths("pool"), labelled, sizes, "qat") is None
    assert "qat: distillation alpha 1, the teacher is not used" in capsys.readouterr().out
    from stages.common.data.tfrecord_shards import write_shards

    empty = labelled.__class__(labelled.dataset_dir, labelled.classes, {"unlabelled": []})
    write_shards(empty, tmp_path / "empty", sizes, labelled_fingerprint=labelled.fingerprint())
    with pytest.raises(UserError, match="holds no image: list them in .*unlabelled.txt"):
        unlabelled_images(asked, 0.7, paths("empty"), labelled, sizes, "train_student")
