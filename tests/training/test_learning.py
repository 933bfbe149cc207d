"""Tests that fail when learning breaks, on a dataset where the signal is easy.

Each image is grey noise with zero to three coloured squares; the classes are the colours
(red, green, blue). The student starts from the official ImageNet Lite1 weights, as in
production, and goes through the real stage functions (train_student, train_qat, export_int8).
The margins are stated beside each assertion; the measured values are far from them
(docs/evidence.md gives them), so a pass is not luck and a red is a real break.
"""
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from helpers.in_memory import prepared_for_training

REPO = Path(__file__).resolve().parents[2]
COLOURS = {"blue": (30, 60, 230), "green": (40, 200, 50), "red": (230, 40, 40)}
SIZE = 64


def _colour_image(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    grey = rng.integers(70, 180, (SIZE, SIZE, 1))
    image = np.clip(grey + rng.integers(-12, 13, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    labels = [name for name in COLOURS if rng.uniform() < 0.45]
    for name in labels:
        side = int(rng.integers(14, 24))
        top, left = rng.integers(0, SIZE - side, 2)
        image[top:top + side, left:left + side] = COLOURS[name]
    return image, labels


def write_colour_dataset(root: Path, counts: dict[str, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        lines = []
        for index in range(count):
            image, labels = _colour_image(rng)
            name = f"{split}_{index:03d}.png"
            (root / "images").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "images" / name), image[:, :, ::-1])
            lines.append(f"{name},{'|'.join(labels)}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def constructed_teacher(knows: bool) -> tf.keras.Model:
    """A teacher built, not trained: per colour, a 1x1 convolution scores how close each pixel is
    to that colour and a global max says whether a square of it is present, so its logits are
    about +8 for a colour present and -8 for one absent. ``knows``: each class gets its own
    colour's score. Otherwise the classes are rotated (class i gets colour i + 1's score): a
    teacher as confident as the first, whose answers say nothing about the right labels."""
    inputs = tf.keras.Input((SIZE, SIZE, 3))
    scaled = tf.keras.layers.Rescaling(1 / 255)(inputs)
    match = tf.keras.layers.Conv2D(len(COLOURS), 1, activation="relu", name="colour_match")(scaled)
    present = tf.keras.layers.GlobalMaxPooling2D()(match)
    logits = tf.keras.layers.Dense(len(COLOURS), name="teacher_logits")(present)
    model = tf.keras.Model(inputs, logits)
    names = sorted(COLOURS)  # the vocabulary's order
    kernel = np.zeros((1, 1, 3, len(names)), np.float32)
    bias = np.zeros(len(names), np.float32)
    for index, name in enumerate(names):
        target = np.array(COLOURS[name]) / 255
        # rewards the colour's strong channels, penalises its weak ones: 0.25 on the colour
        # itself, below 0 on grey and on the other two colours
        kernel[0, 0, :, index] = 2 * target - 1
        bias[index] = 0.25 - float(np.dot(2 * target - 1, target))
    model.get_layer("colour_match").set_weights([kernel, bias])
    assignment = np.eye(len(names), dtype=np.float32)
    if not knows:
        assignment = np.roll(assignment, 1, axis=1)
    model.get_layer("teacher_logits").set_weights([assignment * 64,
                                                   np.full(len(names), -8, np.float32)])
    return model


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    """(root, dataset, prepared dir, shards dir, ImageNet Lite1 weights file, params)."""
    from stages.common.core.params import read_params
    from stages.common.data.dataset_validation import validate_dataset

    root = tmp_path_factory.mktemp("colours")
    write_colour_dataset(root / "data", {"train": 96, "val": 48, "test": 48}, seed=5)
    dataset = validate_dataset(root / "data", max_pixels=10**7)
    assert dataset.classes == sorted(COLOURS)
    prepared, _, weights = prepared_for_training(root, dataset, SIZE)
    params = read_params(REPO / "params.yaml")
    params["data"]["dir"] = str(root / "data")
    params["student"].update(input_size=SIZE, batch_size=16, epochs_head=5, epochs_finetune=2,
                             lr_head=5e-3, weights=str(weights))
    params["teacher"].update(input_size=SIZE)
    params["distillation"]["teacher_passes"] = 2
    params["qat"]["epochs"] = 1
    return root, dataset, prepared, root / "shards", weights, params


@pytest.fixture(scope="module")
def trained(colour_data):
    """Teacher, float student, QAT model and INT8 export, each from the production functions.
    The teacher is a random Lite2 trained for one head epoch (on cached backbone features): the
    teacher check must flag it.
    The student learns from the labels only (alpha 1.0), so what it learns is its own."""
    from stages.common.core.params_schema import Params
    from stages.common.data.tfrecord_shards import Shards
    from stages.common.models.fake_quant import rebuild_qat_student
    from stages.common.quantization.int8_export import export_int8
    from stages.common.training.driver import StagePaths, train
    from stages.common.training.recipes.qat import QAT
    from stages.common.training.recipes.student import STUDENT
    from stages.common.training.recipes.teacher import TEACHER

    root, dataset, prepared, shards, _, params = colour_data
    params = json.loads(json.dumps(params))
    # the teacher's head trains on cached backbone features, the student's on images
    params["teacher"].update(architecture="efficientnet_lite2", weights=None, epochs_head=1,
                             epochs_finetune=0, batch_size=16, head_feature_passes=2)
    params["distillation"]["alpha"] = 1.0
    params = Params.from_dict(params)
    common = dict(prepared=prepared, shards=shards, teacher=root / "teacher")
    teacher = train(TEACHER, params, StagePaths(root / "teacher", root / "teacher.json",
                                                root / "live_teacher", root / "ckpt_teacher",
                                                **common))
    student = train(STUDENT, params, StagePaths(root / "student", root / "student.json", None,
                                                root / "ckpt_student", **common))
    qat = train(QAT, params, StagePaths(root / "qat", root / "qat.json", None, root / "ckpt_qat",
                                        student=root / "student", **common))
    qat_model = rebuild_qat_student(len(dataset.classes), SIZE, params.student.dropout,
                                    root / "qat")
    opened = Shards.open(shards, dataset)
    representative = np.concatenate(list(opened.pixel_chunks("train", "student", 64, limit=64)))
    export_int8(qat_model, representative, root / "model.tflite")
    return {"teacher": teacher, "student": student, "qat": qat, "qat_model": qat_model,
            "int8": root / "model.tflite", "shards": opened, "root": root}


def test_the_stages_write_what_they_promise(trained, colour_data):
    root = trained["root"]
    teacher = trained["teacher"]
    assert json.loads((root / "teacher.json").read_text()) == teacher
    assert teacher["phases"]["head"]["epochs_run"] == 1
    assert teacher["phases"]["finetune"]["epochs_run"] == 0
    # the head phase's validation on cached features gave what the whole model gives on images
    assert teacher["phases"]["head"]["val_f1_macro"] == teacher["val_f1_macro"]
    assert teacher["head_phase_inputs"] == "backbone features of 2 fixed augmented passes"
    assert teacher["trainable_backbone_layers"]["head"] == 0
    assert (
        json.loads((root / "teacher" / "model.json").read_text())["architecture"]
        == "efficientnet_lite2"
    )
    assert (root / "live_teacher" / "plots" / "metrics").is_dir()
    for stage in ("teacher", "student", "qat"):
        assert not (root / f"ckpt_{stage}").exists()  # resume checkpoints cleared after success
    student = json.loads((root / "student.json").read_text())
    assert student["distillation"] == {"alpha": 1.0, "temperature": 2.0, "unlabelled_images": 0}
    assert student["head_phase_inputs"] == "images"
    assert set(student["teacher_check"]) >= {"teacher_val_f1_macro_at_0.5",
                                             "teacher_val_f1_macro_tuned",
                                             "student_head_val_f1_macro_at_0.5"}
    assert student["teacher_check"]["student_finetuned_val_f1_macro_at_0.5"] == \
        student["phases"]["finetune"]["val_f1_macro"]
    assert set(trained["qat"]["float_student_before_qat"]) == {"val_loss", "val_f1_macro"}
    from stages.common.data.teacher_outputs import TEACHER_OUTPUTS_FILE
    saved = np.load(root / "student" / TEACHER_OUTPUTS_FILE)  # QAT reads the teacher's logits
    assert {"key", "val", "pass_0", "pass_1"} <= set(saved.files)
    # the teacher's fit on the passes it labelled, against the training labels, by index
    from stages.common.training.teacher_check import teacher_fit_on_passes
    train_targets = colour_data[1].target_matrix("train")
    assert student["teacher_check"]["teacher_train_passes_f1_macro_at_0.5"] == pytest.approx(
        teacher_fit_on_passes([saved["pass_0"], saved["pass_1"]], train_targets))
    assert trained["qat"]["phases"]["qat"]["epochs_run"] == 1


def test_student_beats_the_trivial_baselines(trained):
    student = trained["student"]
    best_baseline = max(student["baselines"].values())
    # margin 0.25 of macro-F1: measured about 0.9 against a best baseline of about 0.6
    assert student["val_f1_macro"] >= best_baseline + 0.25, (student["val_f1_macro"],
                                                             student["baselines"])


def test_teacher_check_flags_a_barely_trained_teacher(trained):
    from stages.common.training.teacher_check import verdict

    check = trained["student"]["teacher_check"]
    assert check["teacher_is_better"] is False
    assert check["student_head_val_f1_macro_at_0.5"] > check["teacher_val_f1_macro_at_0.5"]
    warn, sentence = verdict({**check, "distillation_alpha": 0.7})
    assert warn and "distillation.alpha: 1.0" in sentence and "better teacher" in sentence


def test_qat_keeps_the_float_students_score(trained):
    student, qat = trained["student"], trained["qat"]
    # tolerance 0.05 of val macro-F1 (measured: a difference of about 0.01)
    assert qat["val_f1_macro"] >= student["val_f1_macro"] - 0.05, (qat["val_f1_macro"],
                                                                    student["val_f1_macro"])


def test_int8_decisions_agree_with_the_float_qat_model(trained, colour_data):
    from stages.common.quantization.int8_export import fidelity
    from stages.common.quantization.int8_runtime import Int8Model

    qat_model, model_path, shards = trained["qat_model"], trained["int8"], trained["shards"]
    dataset = colour_data[1]
    targets = np.array(dataset.targets("val"), np.float32).reshape(-1, len(dataset.classes))
    report = fidelity(
        Int8Model.load(model_path), qat_model, shards.pixel_chunks("val", "student", 64), targets
    )
    # at least 95% of (image, class) decisions equal at 0.5 (measured: 100%)
    assert report["identical_decisions_at_0.5"] >= 0.95, report
    assert report["f1_macro_int8_at_0.5"] >= report["f1_macro_float_qat_at_0.5"] - 0.05, report


def test_a_teacher_that_knows_teaches_faster_than_one_that_does_not(colour_data):
    """Same student start, data, steps and loss (the Distiller's, alpha 0.5, T 2); only the
    teacher differs. The classifier head trains (as in the head phase: fast, and a random head
    under a moving backbone makes the curves noisy). Learning speed is the mean val macro-F1 over
    the first four epochs (the area under the learning curve)."""
    from stages.common.core.params_schema import Params
    from stages.common.data.augmentation import Augmentation
    from stages.common.data.input_pipeline import make_dataset, predict_logits
    from stages.common.data.tfrecord_shards import Shards
    from stages.common.models.architectures import build_student, load_student_weights
    from stages.common.models.freezing import set_trainable
    from stages.common.scoring.metrics import f1_macro
    from stages.common.training.distillation import Distiller

    _, dataset, _, shards_dir, weights, params = colour_data
    shards = Shards.open(shards_dir, dataset)
    targets = np.array(dataset.targets("val"), np.float32).reshape(-1, len(dataset.classes))
    teacher_pixels = np.concatenate(list(shards.pixel_chunks("val", "teacher", 64))).astype(
        np.float32
    )
    knowing, not_knowing = constructed_teacher(knows=True), constructed_teacher(knows=False)
    assert f1_macro(targets, knowing(teacher_pixels).numpy() > 0) >= 0.95
    assert f1_macro(targets, not_knowing(teacher_pixels).numpy() > 0) <= 0.6
    train = make_dataset(shards.records("train", ["student", "teacher"], shuffle_buffer=96, seed=0),
                         ["student", "teacher"], 16, training=True, seed=0,
                         augmentation=Augmentation.from_params(
                             Params.from_dict(params).augmentation))
    val = make_dataset(shards.records("val", ["student"]), ["student"], 16, training=False,
                       seed=0).map(lambda images, labels: images)
    curves = {}
    for name, teacher in (("knows", knowing), ("does not", not_knowing)):
        tf.keras.utils.set_random_seed(3)
        student = build_student(len(dataset.classes), SIZE, 0.0)
        load_student_weights(student, str(weights))
        set_trainable(student, "head")
        distiller = Distiller(student, teacher, alpha=0.5, temperature=2.0)
        distiller.compile(optimizer=tf.keras.optimizers.AdamW(5e-3))
        curves[name] = []
        for _ in range(4):
            distiller.fit(train, epochs=1, verbose=0)
            curves[name].append(f1_macro(targets, predict_logits(student, val) > 0))
    # margin 0.2 of mean val macro-F1 (measured: 0.78 against 0.46)
    assert np.mean(curves["knows"]) >= np.mean(curves["does not"]) + 0.2, curves


def test_images_without_labels_join_the_student_and_qat_stages(trained, colour_data, capsys):
    """With distillation.use_unlabelled, the student's teacher passes and QAT cover the training
    images and then the images of unlabelled.txt; QAT reads the student stage's passes instead
    of running the teacher again; the teacher's fit is measured on the labelled rows."""
    from stages.common.core.params_schema import Params
    from stages.common.data.tfrecord_shards import write_shards
    from stages.common.data.unlabelled_images import read_unlabelled
    from stages.common.training.driver import StagePaths, train
    from stages.common.training.recipes.qat import QAT
    from stages.common.training.recipes.student import STUDENT
    from stages.common.training.teacher_check import teacher_fit_on_passes

    root, dataset, prepared, shards, _, params = colour_data
    rng = np.random.default_rng(8)
    names = []
    for index in range(24):
        names.append(f"unlabelled_{index:03d}.png")
        cv2.imwrite(str(root / "data" / "images" / names[-1]), _colour_image(rng)[0][:, :, ::-1])
    (root / "data" / "unlabelled.txt").write_text("\n".join(names) + "\n")
    pool = read_unlabelled(root / "data", dataset, 10**7)
    write_shards(pool, root / "pool", {"student": SIZE, "teacher": SIZE},
                 labelled_fingerprint=dataset.fingerprint())
    params = json.loads(json.dumps(params))
    params["student"].update(epochs_head=1, epochs_finetune=1)
    params["distillation"].update(alpha=0.7, teacher_passes=1, use_unlabelled=True)
    params = Params.from_dict(params)
    common = dict(prepared=prepared, shards=shards, teacher=root / "teacher",
                  unlabelled=root / "pool")
    plans = []

    def keeping_its_plan(recipe):  # the plan carries the pool, which keys its checkpoints
        def plan(*arguments):
            plans.append(recipe.plan(*arguments))
            return plans[-1]
        return replace(recipe, plan=plan)

    student = train(keeping_its_plan(STUDENT), params,
                    StagePaths(root / "student_pool", root / "sp.json", None, root / "ckpt_sp",
                               **common))
    assert student["distillation"]["unlabelled_images"] == 24
    assert plans[-1].unlabelled.count("unlabelled") == 24
    assert "24 images without labels join the 96 training images" in capsys.readouterr().out
    from stages.common.data.teacher_outputs import TEACHER_OUTPUTS_FILE
    saved = np.load(root / "student_pool" / TEACHER_OUTPUTS_FILE)
    assert saved["pass_0"].shape == (96 + 24, len(dataset.classes))
    assert student["teacher_check"]["teacher_train_passes_f1_macro_at_0.5"] == pytest.approx(
        teacher_fit_on_passes([saved["pass_0"][:96]], dataset.target_matrix("train")))
    qat = train(keeping_its_plan(QAT), params,
                StagePaths(root / "qat_pool", root / "qp.json", None, root / "ckpt_qp",
                           student=root / "student_pool", **common))
    assert qat["unlabelled_images"] == 24
    assert plans[-1].unlabelled.count("unlabelled") == 24
    assert "1 augmented pass(es) of 1 read from the student stage" in capsys.readouterr().out
