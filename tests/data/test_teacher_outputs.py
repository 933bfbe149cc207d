"""The teacher-output cache QAT reads instead of running the teacher again: its key, and the
file it guards (read back exactly, refused by name when damaged or of other shapes, ignored
when made under another key)."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf  # noqa: E402
from helpers.in_memory import validated_records

from stages.common.core.errors import UserError
from stages.common.data.teacher_outputs import TeacherOutputs


def test_the_teacher_outputs_key_changes_with_everything_that_made_them(tmp_path):
    """QAT reuses the student stage's teacher logits only under the same key: the teacher's
    weights, its input size, the seed, the augmentation, the batch size, the data and the shuffle
    buffer (which, with mixup, pairs the blends). Each one changed alone must change the key."""
    import dataclasses

    from stages.common.core.params import load_params

    class Data:
        def __init__(self, fingerprint):
            self.value = fingerprint

        def fingerprint(self):
            return self.value

    augmentation = load_params(Path(__file__).parents[2] / "params.yaml").augmentation
    weights, other_weights = tmp_path / "a.h5", tmp_path / "b.h5"
    weights.write_bytes(b"teacher one")
    other_weights.write_bytes(b"teacher two")
    base = dict(teacher_weights=weights, teacher_size=260, seed=1, augmentation=augmentation,
                batch_size=32, dataset=Data("d1"), shuffle_buffer=512)
    key = TeacherOutputs.key_of(**base)
    jitter = dataclasses.replace(augmentation.color_jitter, brightness=0.5)
    for name, value in (("teacher_weights", other_weights), ("teacher_size", 300), ("seed", 2),
                        ("augmentation", dataclasses.replace(augmentation,
                                                             random_flip_horizontal=False)),
                        ("augmentation", dataclasses.replace(augmentation, color_jitter=jitter)),
                        ("augmentation", dataclasses.replace(augmentation, mixup_alpha=0.4)),
                        ("batch_size", 16), ("dataset", Data("d2")), ("shuffle_buffer", 64)):
        assert TeacherOutputs.key_of(**{**base, name: value}) != key, name
    assert TeacherOutputs.key_of(**base) == key



def _outputs(key="k1"):
    rng = np.random.default_rng(0)
    return TeacherOutputs(key, rng.normal(size=(3, 2)).astype(np.float32),
                          [rng.normal(size=(5, 2)).astype(np.float32) for _ in range(2)])


def test_saved_outputs_read_back_exactly_under_their_key(tmp_path):
    path = tmp_path / "teacher_outputs.npz"
    saved = _outputs()
    saved.save(path)
    loaded = TeacherOutputs.load(path, "k1", (3, 5, 2))
    assert loaded.key == "k1"
    assert np.array_equal(loaded.val, saved.val)
    assert len(loaded.passes) == 2
    assert all(np.array_equal(a, b) for a, b in zip(loaded.passes, saved.passes))


def test_outputs_made_under_another_key_or_absent_are_not_used(tmp_path):
    path = tmp_path / "teacher_outputs.npz"
    assert TeacherOutputs.load(path, "k1", (3, 5, 2)) is None
    _outputs("k1").save(path)
    assert TeacherOutputs.load(path, "k2", (3, 5, 2)) is None
    np.savez(path, val=np.zeros((3, 2), np.float32))  # no key at all
    assert TeacherOutputs.load(path, "k1", (3, 5, 2)) is None


def test_a_damaged_file_is_named_with_the_way_back(tmp_path):
    path = tmp_path / "teacher_outputs.npz"
    path.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(UserError) as caught:
        TeacherOutputs.load(path, "k1", (3, 5, 2))
    assert str(caught.value).startswith(f"{path}: damaged (")
    assert str(caught.value).endswith(f"get it back with `dvc checkout {path}` or rebuild it "
                                      "with `dvc repro -f train_student`")


@pytest.mark.parametrize("shape, problem", [
    ((4, 5, 2), "val is (3, 2), expected (4, 2)"),
    ((3, 6, 2), "pass_0 is (5, 2), expected (6, 2); pass_1 is (5, 2), expected (6, 2)"),
    ((3, 5, 3), "val is (3, 2), expected (3, 3); pass_0 is (5, 2), expected (5, 3); "
                "pass_1 is (5, 2), expected (5, 3)"),
])
def test_outputs_of_other_shapes_are_named(tmp_path, shape, problem):
    path = tmp_path / "teacher_outputs.npz"
    _outputs().save(path)
    with pytest.raises(UserError) as caught:
        TeacherOutputs.load(path, "k1", shape)
    assert str(caught.value) == (f"{path}: {problem} (float logits per image and class); get it "
                                 f"back with `dvc checkout {path}` or rebuild it with `dvc repro "
                                 "-f train_student`")


def test_integer_outputs_are_refused(tmp_path):
    path = tmp_path / "teacher_outputs.npz"
    outputs = _outputs()
    outputs.val = outputs.val.astype(np.int32)
    outputs.save(path)
    with pytest.raises(UserError, match=r"val is \(3, 2\), expected \(3, 2\) \(float logits"):
        TeacherOutputs.load(path, "k1", (3, 5, 2))


def test_a_file_whose_arrays_need_unpickling_is_refused_not_unpickled(tmp_path):
    """np.load must never run pickle on a file a user can swap in: an object array, even the
    key, makes the file damaged."""
    path = tmp_path / "teacher_outputs.npz"
    outputs = _outputs()
    np.savez(path, key=np.array(["k1"], dtype=object).reshape(()), val=outputs.val,
             pass_0=outputs.passes[0])
    with pytest.raises(UserError, match=r"damaged \(.*allow_pickle=False"):
        TeacherOutputs.load(path, "k1", (3, 5, 2))


class _CountingTeacher:
    """A tiny teacher that counts the batches it is run on, in a variable: the pipeline runs
    the teacher compiled (tf.function), where Python code runs once per trace, not per batch."""

    def __init__(self):
        inputs = tf.keras.Input((40, 40, 3))
        pooled = tf.keras.layers.GlobalAveragePooling2D()(inputs)
        self.model = tf.keras.Model(inputs, tf.keras.layers.Dense(5, name="logits")(pooled))
        self.batches = tf.Variable(0)

    @property
    def runs(self) -> int:
        return int(self.batches.numpy())

    @runs.setter
    def runs(self, value: int) -> None:
        self.batches.assign(value)

    def __call__(self, images, training=False):
        self.batches.assign_add(1)
        return self.model(images, training=training)


def test_teacher_outputs_read_back_are_those_the_teacher_gives(tiny_dataset, tmp_path):
    """QAT reads the teacher's logits that the student stage saved instead of running the
    teacher again: read back, they must be exactly what running it gives, every pass fed as
    before; and outputs made under another key must not be read."""
    from stages.common.core.params import load_params
    from stages.common.data.input_pipeline import distillation_data
    from stages.common.data.teacher_outputs import TeacherOutputs
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = validated_records(tiny_dataset)
    write_shards(dataset, tmp_path / "shards", {"student": 32, "teacher": 40})
    shards = Shards.open(tmp_path / "shards", dataset)
    augmentation = load_params(Path(__file__).parents[2] / "params.yaml").augmentation

    def data(teacher, passes, known=None):
        return distillation_data(dataset, shards, teacher, 4, 3, augmentation, 64, passes,
                                 "key", known)

    teacher = _CountingTeacher()
    first = data(teacher, 2)
    first.teacher_outputs.save(tmp_path / "teacher_outputs.npz")
    shape = (shards.count("val"), shards.count("train"), len(dataset.classes))
    assert TeacherOutputs.load(tmp_path / "teacher_outputs.npz", "another key", shape) is None
    np.savez(tmp_path / "unkeyed.npz", val=np.zeros((6, 5)))  # not written by TeacherOutputs
    assert TeacherOutputs.load(tmp_path / "unkeyed.npz", "key", shape) is None
    known = TeacherOutputs.load(tmp_path / "teacher_outputs.npz", "key", shape)
    assert len(known.passes) == 2
    # damaged or of other shapes: named, never used
    saved = (tmp_path / "teacher_outputs.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(saved[:len(saved) // 2])
    with pytest.raises(UserError, match=f"{tmp_path / 'cut.npz'}: damaged .*dvc repro -f "
                                        "train_student"):
        TeacherOutputs.load(tmp_path / "cut.npz", "key", shape)
    other = (shape[0], shape[1] + 1, shape[2])
    with pytest.raises(
        UserError, match=rf"pass_0 is \({shape[1]}, 5\), expected \({shape[1] + 1}, 5\)"
    ):
        TeacherOutputs.load(tmp_path / "teacher_outputs.npz", "key", other)

    teacher.runs = 0
    reused = data(teacher, 2, known)
    assert teacher.runs == 0  # nothing run again
    fresh = data(teacher, 3)  # the teacher run anew: the same logits as those read back
    np.testing.assert_array_equal(fresh.teacher_val_logits, known.val)
    for number in range(2):
        np.testing.assert_array_equal(fresh.teacher_outputs.passes[number], known.passes[number])
    teacher.runs = 0
    extended = data(teacher, 3, known)  # a third pass is computed, the first two read
    assert teacher.runs == 3  # 12 training images in batches of 4: one pass
    np.testing.assert_array_equal(extended.teacher_outputs.passes[2],
                                  fresh.teacher_outputs.passes[2])

    def fed(distill_data):
        return [extra["teacher_logits"].numpy() for (_, extra), _ in
                distill_data.distill_train.take(distill_data.distill_steps_per_epoch * 2)]

    for mine, theirs in zip(fed(reused), fed(first)):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(ValueError, match="another key"):
        distillation_data(dataset, shards, teacher, 4, 3, augmentation, 64, 2, "other", known)


def _brightest_teacher(images, training=False):
    """A stand-in teacher for the tiny dataset's five classes whose logits are each channel's
    brightest and darkest pixels: not linear, so its output on a blend is not the blend of its
    outputs."""
    extremes = [tf.reduce_max(images, axis=[1, 2]), tf.reduce_min(images, axis=[1, 2])]
    return tf.concat(extremes, axis=1)[:, :5]


def test_with_mixup_the_teacher_labels_the_very_blend_the_student_trains_on(tiny_dataset,
                                                                           tmp_path):
    """Fixed passes with mixup (distillation.mixup_alpha): each logit the student is fed must
    be the teacher's on the blended image the student sees with it, in the first run of each
    pass and in its replays (a pass's pairs and weights depend on its batches, so its order must
    replay too); the head phase's batches are not blended."""
    import dataclasses

    from stages.common.core.params import load_params
    from stages.common.data.input_pipeline import distillation_data, distilling_augmentation
    from stages.common.data.preprocessing import STUDENT_SCALE, STUDENT_ZERO_POINT
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = validated_records(tiny_dataset)
    # the same size for both views: the teacher's image is the student's, normalised otherwise
    write_shards(dataset, tmp_path / "shards", {"student": 40, "teacher": 40})
    shards = Shards.open(tmp_path / "shards", dataset)
    shared = dataclasses.replace(
        load_params(Path(__file__).parents[2] / "params.yaml").augmentation, mixup_alpha=0.0)
    assert distilling_augmentation(shared, None) is shared
    augmentation = distilling_augmentation(shared, 0.4)
    assert augmentation.mixup_alpha == 0.4 and augmentation.color_jitter == shared.color_jitter
    data = distillation_data(dataset, shards, _brightest_teacher, 4, 3, shared, 64, 2, "key",
                             mixup_alpha=0.4)
    blends = 0
    for (student_images, extra), targets in data.distill_train.take(
            data.distill_steps_per_epoch * 4):  # both passes, each replayed once
        as_teacher_sees = student_images * STUDENT_SCALE + STUDENT_ZERO_POINT
        np.testing.assert_allclose(extra["teacher_logits"].numpy(),
                                   _brightest_teacher(as_teacher_sees).numpy(), atol=1e-3)
        blends += int(((targets.numpy() > 0) & (targets.numpy() < 1)).any(axis=1).sum())
    assert blends > 0
    # the head phase's plain batches keep the shared augmentation: no blends there
    for _, targets in data.plain_train.take(3):
        assert set(np.unique(targets.numpy())) <= {0.0, 1.0}
