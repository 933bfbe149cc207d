"""Augmentation: one parameter set shared by an example's views, seeded; mixup blends views and
labels alike, and replays in a fixed pass."""

import numpy as np
import tensorflow as tf  # noqa: E402
from helpers.in_memory import in_memory_source, letterbox_split, validated_records

from stages.common.data.augmentation import Augmentation
from stages.common.data.input_pipeline import make_dataset


def test_augmentation_is_shared_between_views_and_seeded(tiny_dataset):
    dataset = validated_records(tiny_dataset)
    pixels, boxes = letterbox_split(dataset.dataset_dir, dataset.splits["train"], 40)
    targets = np.array(dataset.targets("train"), dtype=np.float32)
    strong = Augmentation(True, 0.05, 0.2, 0.2, 0.2, 0.2)

    def batches(seed):
        source = in_memory_source([pixels, pixels], [boxes, boxes], targets).shuffle(
            len(targets), seed=seed, reshuffle_each_iteration=True)  # as Shards.records does
        data = make_dataset(source, ["teacher", "teacher"], 12, training=True, seed=seed,
                            augmentation=strong)
        return [(a.numpy(), b.numpy()) for (a, b), _ in data.take(1)] + \
               [(a.numpy(), b.numpy()) for (a, b), _ in data.take(1)]

    run = batches(5)
    (first_a, first_b), (second_a, _) = run
    np.testing.assert_array_equal(first_a, first_b)  # both views got the same augmentation
    assert not np.allclose(first_a, second_a)  # a new epoch draws new augmentations
    assert np.array_equal(batches(5)[0][0], first_a)  # the same seed repeats exactly
    assert first_a.min() >= 0 and first_a.max() <= 255


def test_mixup_blends_views_and_labels_hand_computed():
    from stages.common.data.augmentation import mix_batch

    view = tf.constant([[[[0.0]]], [[[100.0]]]])  # two 1x1 images
    targets = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    (blended,), mixed = mix_batch([view], targets, tf.constant([0.75, 0.25]))
    # partner of i: B-1-i; 0.75 * 0 + 0.25 * 100 and 0.25 * 100 + 0.75 * 0
    np.testing.assert_allclose(blended.numpy().ravel(), [25.0, 25.0])
    np.testing.assert_allclose(mixed.numpy(), [[0.75, 0.25], [0.75, 0.25]])


def test_mixup_in_a_fixed_pass_is_replayed_identically_and_shared_by_views(tiny_dataset):
    from stages.common.data.augmentation import mixup_weights

    dataset = validated_records(tiny_dataset)
    pixels, boxes = letterbox_split(dataset.dataset_dir, dataset.splits["train"], 40)
    targets = np.array(dataset.targets("train"), dtype=np.float32)
    mixing = Augmentation(True, 0.05, 0.2, 0.2, 0.2, 0.2, mixup=0.4)

    def one_pass():
        data = make_dataset(in_memory_source([pixels, pixels], [boxes, boxes], targets),
                            ["teacher", "teacher"], 12, training=True, seed=3,
                            augmentation=mixing, augmentation_pass=0)
        return [((a.numpy(), b.numpy()), y.numpy()) for (a, b), y in data]

    first, again = one_pass(), one_pass()
    for ((a, b), y), ((a2, _), y2) in zip(first, again):
        np.testing.assert_array_equal(a, b)  # both views blended alike
        np.testing.assert_array_equal(a, a2)  # a fixed pass replays its blends
        np.testing.assert_array_equal(y, y2)
    labels = np.concatenate([y for _, y in first])
    assert ((labels > 0) & (labels < 1)).any()  # blended labels
    assert labels.min() >= 0 and labels.max() <= 1
    # Beta(0.4, 0.4) weights: in [0, 1], spread out (its standard deviation is about 0.37)
    weights = mixup_weights(tf.random.stateless_uniform([12, 6], seed=[1, 2]), 0.4).numpy()
    assert ((weights >= 0) & (weights <= 1)).all() and weights.std() > 0.1
