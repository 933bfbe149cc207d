"""Probe (tenth round, docs/benchmark.md): soft targets from two teachers' averaged logits.

The student stage runs as shipped, except that wherever it reads the teacher (models/teacher)
it gets a model that averages the logits of that teacher and of the trained teachers named on
the command line: on the val images (the teacher check) and on the fixed augmented passes.
The saved passes keep the key of models/teacher, so QAT reads the averaged logits too. Run
from the workspace root, with models/checkpoints/train_student absent:

    python probe_teacher_ensemble.py OTHER_TEACHER_DIR [...]
    dvc repro --downstream qat
"""
import sys
from pathlib import Path


def main() -> None:
    others = [Path(path) for path in sys.argv[1:]]
    if not others:
        sys.exit("usage: python probe_teacher_ensemble.py OTHER_TEACHER_DIR [...]")
    from stages.common.models import trained_models
    from stages.common.training.recipes import student

    keras = trained_models.keras
    load_trained = trained_models.load_trained

    def ensemble_of_teachers(directory, classes=None):
        teacher, meta = load_trained(directory, classes)
        if Path(directory).resolve() != Path("models/teacher").resolve():
            return teacher, meta
        members = [teacher]
        for other in others:
            model, other_meta = load_trained(other, classes)
            if other_meta["input_size"] != meta["input_size"]:
                sys.exit(f"{other}: input size {other_meta['input_size']}, "
                         f"models/teacher has {meta['input_size']}")
            members.append(model)
        for number, member in enumerate(members):
            member._name = f"teacher_{number}"  # a functional model wants unique layer names
        images = keras.Input(teacher.input_shape[1:])
        logits = keras.layers.Average()([member(images, training=False) for member in members])
        print(f"probe: the teacher is the average of {len(members)} teachers' logits "
              f"(models/teacher, {', '.join(map(str, others))})", flush=True)
        return keras.Model(images, logits, name="teacher_ensemble"), meta

    student.load_trained = ensemble_of_teachers
    import stages.train_student

    sys.argv = ["stages/train_student.py"]
    stages.train_student.main()


if __name__ == "__main__":
    main()
