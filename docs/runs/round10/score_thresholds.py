"""Tenth round, one-off: score packaged models on a split at several thresholds, not only the
adopted ones (their own global threshold, 0.5, the per-class candidates, the best global on the
split itself). Not a pipeline tool.

    PYTHONPATH=. python docs/runs/round10/score_thresholds.py DATASET OUTPUT_DIR...
"""
import json
import sys
from pathlib import Path

import numpy as np

from stages.common.data.image_files import read_image_file
from stages.common.deployment.predictor import Predictor
from stages.common.evaluation.package_scoring import read_labelled_split, truth_matrix
from stages.common.scoring.metrics import multilabel_metrics
from stages.common.scoring.threshold_search import search_thresholds, threshold_grid

split = read_labelled_split(sys.argv[1], "test")
for output_dir in sys.argv[2:]:
    predictor = Predictor.load(output_dir)
    classes = predictor.classes
    truth = truth_matrix(split, classes)
    results = (predictor.predict_image(read_image_file(split.images_dir / entry.name,
                                                       predictor.max_image_pixels))
               for entry in split.entries)
    probabilities = np.array([[result["probabilities"][name] for name in classes]
                              for result in results])
    thresholds = json.loads((Path(output_dir) / "threshold_recommendation.json").read_text())

    def f1_macro(threshold):
        return multilabel_metrics(truth, probabilities >= threshold)["f1_macro"]

    candidates = thresholds["candidate_per_class_thresholds"]
    per_class = np.array([candidates[name] for name in classes])
    recorded = thresholds["grid"]  # the grid the thresholds stage searched
    grid = threshold_grid(recorded["min"], recorded["max"], recorded["step"])
    best = search_thresholds(truth, probabilities, grid, classes)["global_threshold"]
    own_global = thresholds["global_threshold"]
    print(f"{output_dir}: adopted {thresholds['adopted']}; "
          f"global {own_global}: {f1_macro(own_global):.4f}, "
          f"0.5: {f1_macro(0.5):.4f}, per-class candidates: {f1_macro(per_class):.4f}, "
          f"best global on this split {best}: {f1_macro(best):.4f}")
