"""Probe (ninth round, docs/benchmark.md): unlabelled images that only the teacher labels.

The dataset folder's train.txt lists the benchmark's labelled training images first, then a pool
of images listed with no labels (make_pool.py: the same benchmark seed's training samples,
another random stream; their labels are never written).
The teacher stays the one trained on the labelled images alone (models/teacher, copied in).
What this probe changes, by patching input_pipeline.make_dataset:
- the student's head phase trains on the labelled images only;
- on the fixed augmented passes the teacher labels every image, pool included (as always);
- in the distilling phases (student fine-tune, QAT) a pool image's hard target is the
  teacher's sigmoid on that very augmented image; a labelled image keeps its label.
Run from the workspace root, with LABELLED the count of labelled training images:

    python probe_unlabelled.py LABELLED stages.train_student
    python probe_unlabelled.py LABELLED stages.qat
    python -m stages.export; ... (the later stages, unpatched: they read no training targets)
"""
import runpy
import sys


def main() -> None:
    labelled, stage = int(sys.argv[1]), sys.argv[2]
    import tensorflow as tf

    from stages.common.data import input_pipeline

    make_dataset = input_pipeline.make_dataset
    unlabelled_mark = -1.0

    def patched(source, normalizers, batch_size, *, training, seed, augmentation=None,
                augmentation_pass=None, teacher_logits=None, keep_index=False):
        if training and teacher_logits is None and not keep_index:
            # the labels' own batches (the head phase): labelled images only
            source = source.filter(lambda images, boxes, targets, index: index < labelled)
        elif training and teacher_logits is not None:
            source = source.map(lambda images, boxes, targets, index: (
                images, boxes,
                tf.where(index < labelled, targets, tf.fill(tf.shape(targets), unlabelled_mark)),
                index))
        data = make_dataset(source, normalizers, batch_size, training=training, seed=seed,
                            augmentation=augmentation, augmentation_pass=augmentation_pass,
                            teacher_logits=teacher_logits, keep_index=keep_index)
        if training and teacher_logits is not None:
            def pseudo(inputs, targets):
                teacher = tf.sigmoid(inputs[1][input_pipeline.TEACHER_LOGITS])
                return inputs, tf.where(targets < 0, teacher, targets)
            data = data.map(pseudo)
        return data

    input_pipeline.make_dataset = patched
    sys.argv = [stage.replace(".", "/") + ".py"]
    runpy.run_module(stage, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
