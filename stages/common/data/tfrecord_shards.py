"""Letterboxed images in sharded TFRecord files, streamed by training, export and evaluation.

Each image is decoded and letterboxed once, at every size the pipeline needs ("views": the
student's and the teacher's input size), and stored losslessly (raw uint8 bytes, or PNG to save
disk at the cost of a decode per epoch) in one record with its
content boxes and multi-hot targets, so both views of an example travel together and get the
same augmentation. Stages then stream the records: memory is bounded by the shuffle buffer
(serialised records, so compressed) and the prefetch depth, not by the dataset size.

Layout of ``<dir>``: ``<split>-NNNNN.tfrecord`` (``images_per_shard`` records each, in the split's
order) and ``manifest.json`` (views and sizes, classes, counts, dataset fingerprint). The images
without labels (``unlabelled_images``) are written the same way, to a folder of their own: their
split is ``unlabelled`` and their manifest names the labelled dataset they were checked against.
"""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow as tf

from stages.common.core import layout
from stages.common.core.errors import UserError, way_back
from stages.common.core.json_files import write_json
from stages.common.core.output_folders import replaced_folder
from stages.common.core.progress import Progress
from stages.common.data.dataset import IMAGES_FOLDER, UNLABELLED, PreparedDataset
from stages.common.data.image_files import encode_rgb_png, load_image
from stages.common.data.preprocessing import content_box, letterbox

MANIFEST = "manifest.json"
SHARD_FILE = re.compile(r"(train|val|test|unlabelled)-\d{5}\.tfrecord")
IN_FLIGHT = 32  # records decoded and encoded ahead of the writer
_FOLDER_OF_STAGE = {"shards": layout.SHARDS, "unlabelled_images": layout.UNLABELLED}


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


ENCODINGS = ("raw", "png")


def _encode(pixels: np.ndarray, encoding: str) -> bytes:
    if encoding == "raw":
        return np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    return encode_rgb_png(pixels, compression=1)  # fast: shards are written once per run


def write_shards(dataset: PreparedDataset, out_dir: str | Path, sizes: dict[str, int],
                 images_per_shard: int = 1024, workers: int = 4, encoding: str = "raw",
                 labelled_fingerprint: str | None = None) -> dict:
    """Write every split's records and the manifest; returns the manifest.
    ``labelled_fingerprint``: for a folder of images without labels, the fingerprint of the
    labelled dataset they belong to (the manifest keeps it, ``open_unlabelled`` checks it).

    ``encoding``: ``raw`` (the uint8 bytes: no decoding cost, S*S*3 bytes per view) or ``png``
    (lossless, smaller on disk, costs a PNG decode per view and epoch).

    ``out_dir`` is replaced whole once every shard is written; a folder holding anything but
    shards is refused."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}")
    with replaced_folder(out_dir, _is_shards_folder, "shards written by the shards stage",
                         mark=False) as staging:
        manifest = _write_shards(dataset, staging, sizes, images_per_shard, workers, encoding,
                                 labelled_fingerprint)
    return manifest


def _is_shards_folder(folder: Path) -> bool:
    return all(path.name == MANIFEST or SHARD_FILE.fullmatch(path.name)
               for path in folder.iterdir())


def _write_shards(dataset: PreparedDataset, out_dir: Path, sizes: dict[str, int],
                  images_per_shard: int, workers: int, encoding: str,
                  labelled_fingerprint: str | None) -> dict:
    images_dir = Path(dataset.dataset_dir) / IMAGES_FOLDER
    counts = {}
    for split in dataset.splits:
        records = dataset.splits[split]
        targets = dataset.targets(split)

        def serialise(position: int) -> bytes:
            record = records[position]
            image = load_image(images_dir / record.name)
            features = {"index": _ints([position]), "targets": _floats(targets[position])}
            for view, size in sizes.items():
                features[f"{view}/pixels"] = _bytes(_encode(letterbox(image, size), encoding))
                features[f"{view}/box"] = _ints(content_box(record.height, record.width, size))
            # deterministic: the features map in key order. Otherwise its order varies from one
            # process to the next, so a rerun on the same images wrote other bytes and DVC
            # trained the teacher again
            return tf.train.Example(
                features=tf.train.Features(feature=features)
            ).SerializeToString(deterministic=True)

        progress = Progress(f"shards: {split}", len(records))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for shard, start in enumerate(range(0, len(records), images_per_shard)):
                positions = range(start, min(start + images_per_shard, len(records)))
                with tf.io.TFRecordWriter(str(out_dir / f"{split}-{shard:05d}.tfrecord")) as writer:
                    # a few records in flight at a time: memory stays bounded on any shard size
                    for window in range(0, len(positions), IN_FLIGHT):
                        for serialised in pool.map(serialise, positions[window:window + IN_FLIGHT]):
                            writer.write(serialised)
                            progress.advance()
        counts[split] = len(records)
    manifest = {"views": sizes, "classes": dataset.classes, "counts": counts,
                "images_per_shard": images_per_shard, "dataset_fingerprint": dataset.fingerprint(),
                "encoding": encoding}
    if labelled_fingerprint is not None:
        manifest["labelled_fingerprint"] = labelled_fingerprint
    write_json(out_dir / MANIFEST, manifest)
    return manifest


@dataclass
class Shards:
    """A shard folder as later stages read it."""

    directory: str  # a local folder, or a URL TensorFlow's file systems read (file://, gs://)
    manifest: dict

    @classmethod
    def open(cls, directory: str | Path, dataset: PreparedDataset | None = None,
             sizes: dict[str, int] | None = None, stage: str = "shards") -> "Shards":
        """``directory``: the shards stage's folder, or the same files at a URL that every worker
        of a cluster can read (``file:///shared/shards``, ``gs://bucket/shards``). ``dataset``:
        the shards must have been written from it. ``sizes``: the image size of each view the
        caller's models take ({"student": 240}), which the shards must have."""
        directory = str(directory).rstrip("/")
        manifest_path = f"{directory}/{MANIFEST}"
        try:
            with tf.io.gfile.GFile(manifest_path) as manifest_file:
                manifest = json.loads(manifest_file.read())
            if not (isinstance(manifest, dict) and {"dataset_fingerprint", "views", "counts",
                                                   "classes", "encoding"} <= set(manifest)):
                raise ValueError("not the manifest the shards stage writes")
        except tf.errors.NotFoundError:
            raise UserError(f"{manifest_path} not found: run the {stage} stage first "
                            f"(dvc repro {stage})") from None
        except tf.errors.OpError as error:  # an unknown URL scheme, a refused permission...
            raise UserError(f"{manifest_path}: cannot be read ({error.message})") from None
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise UserError(f"{manifest_path}: damaged ({error}); "
                            f"{way_back(_FOLDER_OF_STAGE[stage], stage)}") from None
        if dataset is not None and manifest["dataset_fingerprint"] != dataset.fingerprint():
            raise UserError(f"{directory}: written from another version of the prepared data; "
                            "rerun the shards stage (dvc repro shards)")
        shards = cls(directory, manifest)
        for view, size in (sizes or {}).items():
            shards.require_size(view, size, f"the {view} model")
        return shards

    def size(self, view: str) -> int:
        if view not in self.manifest["views"]:
            raise UserError(
                f"{self.directory}: no {view} view (has {sorted(self.manifest['views'])})"
                "; rerun the shards stage (dvc repro shards)"
            )
        return self.manifest["views"][view]

    def require_size(self, view: str, size: int, consumer: str) -> None:
        """The models are built for ``size``; shards written for another size are stale."""
        if self.size(view) != size:
            raise UserError(
                f"{self.directory}: {view} images are {self.size(view)} px, {consumer} "
                f"takes {size} px; rerun the pipeline from the shards stage (dvc repro)"
            )

    def count(self, split: str, unlabelled: "Shards | None" = None) -> int:
        """The split's images; with ``unlabelled`` (split train), those images too."""
        extra = 0 if unlabelled is None else unlabelled.count(UNLABELLED)
        return self.manifest["counts"][split] + extra

    def files(self, split: str) -> list[str]:
        return sorted(tf.io.gfile.glob(f"{self.directory}/{split}-*.tfrecord"))

    def records(self, split: str, views: list[str], *, shuffle_buffer: int = 0, seed: int = 0,
                indices: np.ndarray | None = None, reshuffle: bool = True,
                unlabelled: "Shards | None" = None) -> tf.data.Dataset:
        """Elements ``((pixels per view), (boxes per view), targets, index)``: uint8 S x S x 3,
        int32 4, float32 C, and the image's position in the split (int64). With ``shuffle_buffer``,
        shard order and records are shuffled (seeded): anew every epoch, or, with ``reshuffle``
        false, in one order every iteration replays, whichever views are read. The buffer holds
        serialised, compressed records. ``indices``: only those positions of the split (filtered
        before any image is decoded).

        ``unlabelled`` (with split ``train``): a folder of images without labels
        (``open_unlabelled``) read as more training images, shuffled in among them: their index
        goes on from the last training image's (``count`` of both), and their targets are NaN,
        the mark of an image whose hard target the teacher gives (training.distillation)."""
        if unlabelled is not None and split != "train":
            raise ValueError("images without labels join the training split only")
        sizes = [self.size(view) for view in views]
        if unlabelled is not None:
            for view, size in zip(views, sizes):
                unlabelled.require_size(view, size, f"the {view} view of {self.directory}")
        num_classes = len(self.manifest["classes"])
        spec = {"index": tf.io.FixedLenFeature([1], tf.int64),
                "targets": tf.io.FixedLenFeature([num_classes], tf.float32)}
        for view in views:
            spec[f"{view}/pixels"] = tf.io.FixedLenFeature([], tf.string)
            spec[f"{view}/box"] = tf.io.FixedLenFeature([4], tf.int64)

        files = self.files(split)
        # each file with the index of its folder's first image, and whether its images have labels
        offsets, labelled = [0] * len(files), [True] * len(files)
        if unlabelled is not None:
            pool_files = unlabelled.files(UNLABELLED)
            files = files + pool_files
            offsets += [self.count(split)] * len(pool_files)
            labelled += [False] * len(pool_files)
        sources = tf.data.Dataset.from_tensor_slices(
            (files, tf.constant(offsets, tf.int64, [len(files)]), tf.constant(labelled, tf.bool,
                                                                              [len(files)])))

        def read(file, offset, has_labels):
            return tf.data.TFRecordDataset(file).map(
                lambda serialised: (serialised, offset, has_labels))

        if shuffle_buffer and files:
            data = sources.shuffle(len(files), seed=seed, reshuffle_each_iteration=reshuffle)
            # a few shards read at once so the buffer mixes images from several of them
            data = data.interleave(read, cycle_length=min(4, len(files)),
                                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=reshuffle)
        else:
            data = sources.flat_map(read)

        def parse(serialised, offset, has_labels):
            example = tf.io.parse_single_example(serialised, spec)
            if unlabelled is not None:
                example["index"] = example["index"] + offset
                example["targets"] = tf.where(
                    has_labels, example["targets"], tf.fill([num_classes], float("nan")))
            return example

        data = data.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if indices is not None:
            wanted = tf.constant(np.asarray(indices, dtype=np.int64))
            data = data.filter(lambda example: tf.reduce_any(tf.equal(wanted, example["index"][0])))

        raw = self.manifest["encoding"] == "raw"

        def decode_view(encoded, size):
            if raw:
                return tf.reshape(tf.io.decode_raw(encoded, tf.uint8), [size, size, 3])
            return tf.ensure_shape(tf.io.decode_png(encoded, channels=3), [size, size, 3])

        def decode(example):
            pixels = tuple(decode_view(example[f"{view}/pixels"], size)
                           for view, size in zip(views, sizes))
            boxes = tuple(tf.cast(example[f"{view}/box"], tf.int32) for view in views)
            return pixels, boxes, example["targets"], example["index"][0]

        return data.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def pixel_chunks(self, split: str, view: str, chunk: int = 256, limit: int | None = None,
                     indices: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """The split's letterboxed uint8 images in order, ``chunk`` at a time (bounded memory);
        a damaged shard is a UserError naming the split's files (see ``damage_named``)."""
        data = self.records(split, [view], indices=indices).map(lambda pixels, *_: pixels[0])
        if limit is not None:
            data = data.take(limit)
        with self.damage_named(split):
            for batch in data.batch(chunk).prefetch(1):
                yield batch.numpy()

    @contextmanager
    def damage_named(self, split: str):
        """Turns what TensorFlow raises for a damaged shard while reading ``split`` (a record
        whose checksum fails, a cut file, pixels of the wrong size) into a UserError that names
        the files and how to get them back."""
        try:
            yield
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError,
                tf.errors.OutOfRangeError) as error:
            message = (error.message or str(error)).strip().splitlines()[0][:300]
            raise UserError(f"{self.directory}/{split}-*.tfrecord: a shard is damaged "
                            f"({message}); {way_back(layout.SHARDS, 'shards')}") from None


def open_unlabelled(directory: str | Path, dataset: PreparedDataset,
                    sizes: dict[str, int] | None = None) -> Shards:
    """The folder of images without labels (stage unlabelled_images), checked against the
    prepared, labelled ``dataset`` it was written for and the image ``sizes`` of each view."""
    shards = Shards.open(directory, sizes=sizes, stage="unlabelled_images")
    if (shards.manifest.get("labelled_fingerprint") != dataset.fingerprint()
            or shards.manifest["classes"] != dataset.classes):
        raise UserError(f"{shards.directory}: written for another version of the prepared data; "
                        "rerun the unlabelled_images stage (dvc repro unlabelled_images)")
    return shards
