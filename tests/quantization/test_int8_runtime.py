"""Other CPU kernels against the adopted one: the agreement figures and the material rule."""
import numpy as np
import pytest

from stages.common.evaluation.int8_evaluation import MATERIAL_LABEL_SET_SHARE, kernel_paths_report
from stages.common.quantization.int8_runtime import Int8Model, kernel_path_agreement


def test_agreement_counts_outputs_steps_and_label_sets():
    adopted = np.array([[10, -5], [0, 3], [-20, 40]], dtype=np.int8)
    other = np.array([[11, -5], [-1, 3], [-20, 40]], dtype=np.int8)  # image 1 drops class 0
    agreement = kernel_path_agreement(adopted, other, [0, 0])
    assert agreement == {"images": 3, "differing_outputs": 2 / 6, "max_difference": 1,
                         "images_with_other_labels": 1, "differing_label_sets": 1 / 3}


def _outputs_with_flips(adopted, thresholds, images):
    """A copy of ``adopted`` where ``images`` images cross a threshold, and every other output
    moves by one step without crossing any."""
    other = adopted.astype(int).copy()
    away = np.where(other >= thresholds, 1, -1)  # one step further from the threshold
    other = np.clip(other + away, -128, 127)
    other[:images, 0] = np.where(adopted[:images, 0] >= thresholds[0], thresholds[0] - 1,
                                 thresholds[0])
    return other.astype(np.int8)


def test_a_few_crossings_are_material_and_small_steps_are_not(tiny_int8):
    model = Int8Model.load(tiny_int8[2])
    rng = np.random.default_rng(3)
    adopted = rng.integers(-100, 100, (100, model.num_classes)).astype(np.int8)
    truth = rng.uniform(size=adopted.shape) < 0.4
    thresholds = [0.5] * model.num_classes
    int8 = np.array(model.thresholds_int8(thresholds))
    allowed = int(MATERIAL_LABEL_SET_SHARE * len(adopted))  # 2 of 100: not yet material
    report = kernel_paths_report(truth, adopted, {
        "steps": _outputs_with_flips(adopted, int8, 0),
        "allowed": _outputs_with_flips(adopted, int8, allowed),
        "material": _outputs_with_flips(adopted, int8, allowed + 1),
    }, model, thresholds)
    paths = report["paths"]
    assert paths["steps"]["differing_outputs"] == 1.0 and paths["steps"]["max_difference"] >= 1
    assert (
        paths["steps"]["images_with_other_labels"] == 0 and paths["steps"]["f1_macro_change"] == 0
    )
    assert paths["allowed"]["images_with_other_labels"] == allowed
    assert abs(paths["allowed"]["f1_macro_change"]) <= 0.01  # only the share can decide here
    assert [paths[name]["material"] for name in ("steps", "allowed", "material")] == \
        [False, False, True]
    assert report["adopted"] == "xnnpack" and "2%" in report["rule"]


def test_saved_kernel_outputs_are_used_only_for_their_own_model(tmp_path):
    from stages.common.quantization.int8_runtime import load_kernel_outputs, save_kernel_outputs

    adopted = np.arange(12, dtype=np.int8).reshape(4, 3)
    outputs = {"xnnpack": adopted, "builtin": adopted + 1, "reference": adopted - 1}
    save_kernel_outputs(tmp_path / "outputs.npz", outputs)
    loaded = load_kernel_outputs(tmp_path / "outputs.npz", adopted.copy())
    assert set(loaded) == set(outputs)
    np.testing.assert_array_equal(loaded["builtin"], adopted + 1)
    other_model = adopted.copy()
    other_model[0, 0] += 1  # another model (or split) gave other XNNPACK outputs
    assert load_kernel_outputs(tmp_path / "outputs.npz", other_model) is None
    assert load_kernel_outputs(tmp_path / "absent.npz", adopted) is None


def test_each_kernel_paths_outputs_are_its_own(tiny_int8, tmp_path):
    """kernel_outputs runs the paths side by side, the slow one split across several
    interpreters: each path must still get its own interpreter's outputs, every image once, in
    order."""
    from stages.common.data.dataset_validation import validate_dataset
    from stages.common.data.demo_data import write_demo_dataset
    from stages.common.data.tfrecord_shards import Shards, write_shards
    from stages.common.quantization.int8_outputs import kernel_outputs
    from stages.common.quantization.int8_runtime import KERNEL_PATHS

    write_demo_dataset(tmp_path / "demo", {"train": 24, "val": 12, "test": 2}, seed=11)
    dataset = validate_dataset(tmp_path / "demo", max_pixels=10**7)
    write_shards(dataset, tmp_path / "shards", {"student": 64})
    shards = Shards.open(tmp_path / "shards", dataset)
    models = [Int8Model.load(tiny_int8[2], kernels=name) for name in KERNEL_PATHS]
    # three interpreters of the slow path share its 12 images, 4 each, and must file them in order
    copies = [Int8Model.load(tiny_int8[2], kernels="reference") for _ in range(2)]
    outputs = kernel_outputs(models + copies, shards, "val")
    pixels = np.concatenate(list(shards.pixel_chunks("val", "student", 256)))
    assert sorted(outputs) == sorted(KERNEL_PATHS)
    for model in models:
        assert np.array_equal(outputs[model.kernels], model.raw_outputs(pixels)), model.kernels
    # the paths really differ on these images, so outputs filed under the wrong path would show
    assert not np.array_equal(outputs["xnnpack"], outputs["reference"])


def test_interpreters_sharing_a_path_must_run_one_model(tiny_int8):
    from stages.common.quantization.int8_outputs import kernel_outputs

    first = Int8Model.load(tiny_int8[2], kernels="reference")
    second = Int8Model.load(tiny_int8[2], kernels="reference")
    second.path = second.path.with_name("another_model.tflite")
    with pytest.raises(ValueError, match="different model files"):
        kernel_outputs([first, second], None, "val")
