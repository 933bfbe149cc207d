"""Probe (ninth round, docs/benchmark.md): soft targets from teachers that never saw the image.

The training images are split into K folds (a permutation drawn from params.seed). Teacher k is
the teacher stage's recipe trained on every training image outside fold k; on the student's
fixed augmented passes, an image of fold k gets teacher k's logits. The validation logits (the
teacher check) stay the full teacher's (models/teacher). Run from the workspace root:

    python probe_cross_fit.py fold K k      # train teacher k of K into probe/fold_k
    python probe_cross_fit.py student K     # the student stage with the cross-fitted passes
    dvc repro --downstream qat              # QAT reads the saved passes under the same key
"""
import sys
from pathlib import Path

import numpy as np

PROBE = Path("probe")


def folds_of(count: int, folds: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(count)
    fold = np.empty(count, np.int64)
    fold[order] = np.arange(count) % folds
    return fold


def main() -> None:
    from stages.common.core.params import load_params
    from stages.common.data import input_pipeline
    from stages.common.data.tfrecord_shards import Shards

    params = load_params("params.yaml")
    mode, folds = sys.argv[1], int(sys.argv[2])
    records = Shards.records

    if mode == "fold":
        number = int(sys.argv[3])
        from stages.common.training.driver import StagePaths, train
        from stages.common.training.recipes.teacher import TEACHER

        def records_outside_fold(self, split, views, **kwargs):
            if split == "train" and kwargs.get("indices") is None:
                fold = folds_of(self.count("train"), folds, params.seed)
                kwargs["indices"] = np.flatnonzero(fold != number)
            return records(self, split, views, **kwargs)

        Shards.records = records_outside_fold
        out = PROBE / f"fold_{number}"
        metrics = train(TEACHER, params, StagePaths(out, out / "metrics.json", None,
                                                     PROBE / f"checkpoints_{number}"))
        print(f"fold teacher {number}/{folds}: val macro-F1 {metrics['val_f1_macro']:.4f} "
              f"({metrics['wall_time_s']:.0f} s)")
        return

    from stages.common.data.augmentation import Augmentation  # noqa: F401 (loads TF first)
    from stages.common.models.trained_models import load_trained

    teachers = {}

    def cross_fitted_logits(shards, teacher, number, batch_size, seed, augment, shuffle_buffer):
        # each fold's images read by the teacher that did not train on them: a fixed pass
        # augments each image by (seed, pass, index), whatever else its batch holds
        fold = folds_of(shards.count("train"), folds, params.seed)
        logits = np.zeros((shards.count("train"), len(shards.manifest["classes"])), np.float32)
        seen = np.zeros(shards.count("train"), bool)
        for k in range(folds):
            if k not in teachers:
                teachers[k] = load_trained(PROBE / f"fold_{k}", shards.manifest["classes"])[0]
            wanted = np.flatnonzero(fold == k)

            def records_in_fold(self, split, views, **kwargs):
                if split == "train":
                    kwargs["indices"] = wanted
                return records(self, split, views, **kwargs)

            Shards.records = records_in_fold
            try:
                for (images, index), _ in input_pipeline._pass_batches(
                        shards, ["teacher"], number, batch_size, seed, augment, shuffle_buffer,
                        keep_index=True):
                    logits[index.numpy()] = teachers[k](images, training=False).numpy()
                    seen[index.numpy()] = True
            finally:
                Shards.records = records
        assert seen.all(), f"pass {number}: {int((~seen).sum())} images unseen"
        return logits

    input_pipeline._teacher_logits_of_pass = cross_fitted_logits
    import stages.train_student

    sys.argv = ["stages/train_student.py"]
    stages.train_student.main()


if __name__ == "__main__":
    main()
