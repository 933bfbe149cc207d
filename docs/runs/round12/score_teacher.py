"""Twelfth round, one-off: a trained teacher's macro-F1 at 0.5 on a labelled split (test; or
val, to check it against the stage's own figure), from its models/teacher folder (model.json and
weights.h5), the images letterboxed as the pipeline does. Not a pipeline tool.

    PYTHONPATH=. python docs/runs/round12/score_teacher.py DATASET SPLIT TEACHER_DIR...
"""
import sys

import numpy as np

from stages.common.data.image_files import DEFAULT_MAX_IMAGE_PIXELS, read_image_file
from stages.common.data.preprocessing import letterbox, normalize_teacher
from stages.common.evaluation.package_scoring import read_labelled_split, truth_matrix
from stages.common.models.trained_models import load_trained
from stages.common.training.teacher_check import teacher_val_f1_macro

split = read_labelled_split(sys.argv[1], sys.argv[2])
for teacher_dir in sys.argv[3:]:
    model, meta = load_trained(teacher_dir)
    truth = truth_matrix(split, meta["classes"])
    images = np.stack([letterbox(read_image_file(split.images_dir / entry.name,
                                                 DEFAULT_MAX_IMAGE_PIXELS), meta["input_size"])
                       for entry in split.entries])
    logits = model.predict(normalize_teacher(images), batch_size=32, verbose=0)
    # the teacher check's own figure (macro-F1 at 0.5), so that val gives back the stage's
    print(f"{teacher_dir}: {len(split.entries)} images, macro-F1 at 0.5 "
          f"{teacher_val_f1_macro(logits, truth):.4f}")
