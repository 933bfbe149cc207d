"""The fast recipe (presets/fast.yaml) must still learn the hard benchmark, at a small size.

A small set from the benchmark's generator (stages/common/data/hard_benchmark.py: handwritten
digits on photographs), the student at a smaller input and the preset's every other choice:
learning rates, schedule, the backbone trained from block 4 with its BatchNormalization, label
smoothing, weight decay, augmentation, labels only. It goes through the production function of
the student stage (train_student's recipe). A recipe change that stops the student from learning
this data (frozen statistics, the seed's learning rate, flips...) fails here, where on the
demo's shapes it would not.

Measured on the 2-core "AMD EPYC" (AVX2 only), one run per generator seed, 600 training images
at 160 px, 1 + 10 epochs, 100 val images: val macro-F1 at 0.5 0.422, 0.469, 0.417, 0.404 against
all-positive baselines of 0.328, 0.321, 0.317, 0.316 (seeds 11-14; margins 0.094, 0.148, 0.100,
0.088), each run 2.5 minutes alone and 10-12 beside other training. The margin asserted, 0.03,
is 0.058 below the smallest measured, about twice the four margins' standard deviation (0.027):
a flaky failure in CI would cost more than the hundredths a tighter margin could catch. What the
test is for fails by far more: with the
preset's BatchNormalization frozen instead (``train_batchnorm: false``) the student reached
0.048; with 300 training images and the preset's 6 epochs, 0.136.
"""
from pathlib import Path

import pytest
from helpers.in_memory import prepared_for_training

REPO = Path(__file__).resolve().parents[2]
SIZE = 160  # the student's input here (240 in the preset): the epochs CI can afford
COUNTS = {"train": 600, "val": 100, "test": 8}
EPOCHS_FINETUNE = 10  # the preset's 6 at 240 px: at 160 px the student needs more steps
MARGIN = 0.03  # over the all-positive baseline, in val macro-F1 at 0.5 (measured: 0.088-0.148)


@pytest.fixture(scope="module")
def hard_student(tmp_path_factory):
    from stages.common.core.params import load_params_with_overrides
    from stages.common.core.params_schema import Params
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.hard_benchmark import write_benchmark_dataset
    from stages.common.training.driver import StagePaths, train
    from stages.common.training.recipes.student import STUDENT
    from stages.common.training.recipes.teacher import TEACHER

    root = tmp_path_factory.mktemp("hard")
    write_benchmark_dataset(root / "data", COUNTS, seed=11)
    dataset = validate_dataset(root / "data", max_pixels=10**7)
    prepared, _, weights = prepared_for_training(root, dataset, SIZE)
    params = load_params_with_overrides(REPO / "params.yaml", REPO / "presets" / "fast.yaml")
    assert params["distillation"]["alpha"] == 1.0  # the preset learns from the labels alone
    params["student"].update(input_size=SIZE, weights=str(weights),
                             epochs_finetune=EPOCHS_FINETUNE)
    # the preset's teacher is built but never trained or used: a random one at this size
    params["teacher"].update(input_size=SIZE, weights=None)
    params = Params.from_dict(params)
    common = dict(prepared=prepared, shards=root / "shards", teacher=root / "teacher")
    train(TEACHER, params, StagePaths(root / "teacher", root / "teacher.json", None,
                                      root / "ckpt_teacher", **common))
    return train(STUDENT, params, StagePaths(root / "student", root / "student.json", None,
                                             root / "ckpt_student", **common))


def test_the_fast_recipe_learns_hard_data(hard_student):
    baseline = hard_student["baselines"]["f1_macro_all_positive"]
    assert hard_student["val_f1_macro"] >= baseline + MARGIN, (hard_student["val_f1_macro"],
                                                               hard_student["baselines"])
