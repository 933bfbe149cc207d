"""The training input: without augmentation it is what the phone feeds; fixed augmented passes
repeat exactly."""
from pathlib import Path

import numpy as np
import pytest
from helpers.in_memory import in_memory_source, letterbox_split, validated_records

from stages.common.data.augmentation import Augmentation
from stages.common.data.input_pipeline import make_dataset
from stages.common.data.preprocessing import letterbox, normalize_student


def test_training_input_without_augmentation_is_what_the_phone_feeds(tiny_dataset, tmp_path):
    """Validation and export read the shards through the tf.data pipeline; predict (and the phone)
    decode the file and letterbox it. Both must give the model the same numbers."""
    from stages.common.data.image_files import read_image_file
    from stages.common.data.tfrecord_shards import Shards, write_shards

    dataset = validated_records(tiny_dataset)
    write_shards(dataset, tmp_path / "shards", {"student": 48})
    shards = Shards.open(tmp_path / "shards", dataset)
    streamed, labels = [], []
    for images, targets in make_dataset(shards.records("val", ["student"]), ["student"], 4,
                                        training=False, seed=0):
        streamed.append(images.numpy())
        labels.append(targets.numpy())
    images_dir = Path(dataset.dataset_dir) / "images"
    as_predicted = np.stack(
        [
            normalize_student(letterbox(read_image_file(images_dir / r.name, 10**7), 48))
            for r in dataset.splits["val"]
        ]
    )
    np.testing.assert_array_equal(np.concatenate(streamed), as_predicted)
    np.testing.assert_array_equal(np.concatenate(labels),
                                  np.array(dataset.targets("val"), dtype=np.float32))


def test_fixed_passes_repeat_the_same_augmentation_in_any_order(tiny_dataset):
    dataset = validated_records(tiny_dataset)
    pixels, boxes = letterbox_split(dataset.dataset_dir, dataset.splits["train"], 40)
    targets = np.array(dataset.targets("train"), dtype=np.float32)
    logits = np.arange(len(targets) * 2, dtype=np.float32).reshape(-1, 2)  # row i encodes index i
    strong = Augmentation(True, 0.05, 0.2, 0.2, 0.2, 0.2)

    def by_index(augmentation_pass, shuffle=False):
        source = in_memory_source([pixels], [boxes], targets)
        if shuffle:  # as Shards.records does for training
            source = source.shuffle(len(targets), seed=3, reshuffle_each_iteration=True)
        data = make_dataset(source, ["teacher"], 5, training=True, seed=3, augmentation=strong,
                            augmentation_pass=augmentation_pass, teacher_logits=logits)
        images = {}
        for (batch, extra), labels in data:
            for image, row, label in zip(
                batch.numpy(), extra["teacher_logits"].numpy(), labels.numpy()
            ):
                index = int(row[0]) // 2
                np.testing.assert_array_equal(label, targets[index])  # logits follow their image
                images[index] = image
        return images

    in_order, shuffled = by_index(1), by_index(1, shuffle=True)
    assert sorted(in_order) == list(range(len(targets)))
    for index, image in in_order.items():  # the teacher's pass and the student's shuffled pass
        np.testing.assert_array_equal(shuffled[index], image)
    assert not np.allclose(by_index(2)[0], in_order[0])  # another pass, another augmentation


def test_the_compiled_teacher_gives_its_inference_logits_at_any_batch_size():
    """The teacher's passes run through compiled_inference: what it returns must be the model in
    inference mode (batch norm on its moving statistics, no dropout), for a full batch and for a
    pass's smaller last batch alike."""
    import tensorflow as tf

    from stages.common.data.input_pipeline import compiled_inference

    inputs = tf.keras.Input((8, 8, 3))
    normalised = tf.keras.layers.BatchNormalization()(inputs)
    pooled = tf.keras.layers.GlobalAveragePooling2D()(normalised)
    logits = tf.keras.layers.Dense(5)(tf.keras.layers.Dropout(0.5)(pooled))
    model = tf.keras.Model(inputs, logits)
    model.layers[1].moving_mean.assign([0.5, -1.0, 2.0])  # far from any batch's own statistics
    forward = compiled_inference(model)
    images = np.random.default_rng(0).normal(size=(7, 8, 8, 3)).astype(np.float32)
    for batch in (images[:4], images[4:], images):
        np.testing.assert_allclose(forward(batch).numpy(),
                                   model(batch, training=False).numpy(), atol=1e-5)
        assert np.abs(forward(batch).numpy() - model(batch, training=True).numpy()).max() > 0.1
    with pytest.raises(ValueError, match="inference mode only"):
        forward(images, training=True)
