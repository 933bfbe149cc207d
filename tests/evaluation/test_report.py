"""The visual report: its content on a run's files, what it reads, and the message when a stage's
output is missing."""

import pytest

from stages.common.core.errors import UserError
from stages.common.evaluation.report import build_report
from stages.common.evaluation.run_results import RunFiles, pr_curves, training_curves


def test_missing_metrics_name_the_file_and_the_stage(tmp_path):
    with pytest.raises(
        UserError, match=r"data_report.json: missing; it is written by the stage prepare"
    ):
        build_report(RunFiles(tmp_path / "metrics", tmp_path / "dvclive", None, None))


def test_broken_json_names_the_line(tmp_path):
    (tmp_path / "data_report.json").write_text('{\n  "num_classes": 5,\n  oops\n}')
    with pytest.raises(UserError, match=r"data_report.json:3: not valid JSON"):
        RunFiles(tmp_path).json("data_report.json")


def test_training_curves_read_dvclive_tables(tmp_path):
    folder = tmp_path / "plots" / "metrics" / "eval"
    folder.mkdir(parents=True)
    (folder / "f1_macro.tsv").write_text("step\tf1_macro\n0\t0.25\n1\t0.5\n")
    assert training_curves(tmp_path) == {
        "eval/f1_macro": {"step": [0.0, 1.0], "value": [0.25, 0.5]}
    }


def test_pr_tables_must_match_the_classes(tmp_path):
    (tmp_path / "000_a.csv").write_text("threshold,precision,recall\n0.9,1.0,0.5\n")
    assert pr_curves(tmp_path, ["a"])["a"]["recall"] == [0.5]
    with pytest.raises(UserError, match="1 PR tables for 2 classes"):
        pr_curves(tmp_path, ["a", "b"])


def _run_files(tmp_path):
    """The committed demo run's metrics and curves, copied so a test can alter them."""
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "metrics", tmp_path / "metrics")
    shutil.copytree(repo / "dvclive", tmp_path / "dvclive")
    return RunFiles(tmp_path / "metrics", tmp_path / "dvclive", shards=None, prepared=None)


def _edit(files, name, change):
    import json

    path = files.metrics / name
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


def test_report_shows_the_run_s_figures(tmp_path):
    """Distinctive values planted in the metrics files must come out in the page and the
    summary: the test scores, each class's threshold, the teacher check and the float, PTQ and
    QAT comparison."""
    files = _run_files(tmp_path)

    def evaluation(content):
        content["f1_macro"], content["f1_micro"] = 0.4321, 0.4567
        content["per_class"][0]["threshold"] = 0.77

    def student(content):
        content["teacher_check"].update({"teacher_val_f1_macro_at_0.5": 0.1111,
                                         "student_head_val_f1_macro_at_0.5": 0.2222,
                                         "student_finetuned_val_f1_macro_at_0.5": 0.3434,
                                         "teacher_is_better": False, "distillation_alpha": 0.7})

    def quantization(content):
        content["ptq_int8"]["test_f1_macro"] = 0.3333
        content["qat_int8"]["test_f1_micro"] = 0.6789
        content["qat_minus_ptq_test_f1_macro"].update(difference=0.0123, interval_90=[-0.02, 0.04])

    _edit(files, "evaluation.json", evaluation)
    _edit(files, "student.json", student)
    _edit(files, "quantization.json", quantization)
    report = build_report(files, title="Tiny run")
    page = report.html
    assert page.startswith("<!DOCTYPE html>") and "<title>Tiny run</title>" in page
    for section in ("Summary", "Dataset", "Training", "Teacher check", "Thresholds (val, INT8)",
                    "Test metrics", "Quantisation: float student, PTQ and QAT", "INT8 vs float",
                    "CPU kernels"):
        assert f"<h2>{section}" in page, section
    assert "test INT8 macro-F1: 0.432, micro 0.457" in page
    import json

    classes = [
        row["class"]
        for row in json.loads((files.metrics / "evaluation.json").read_text())["per_class"]
    ]
    assert f"<td>{classes[0]}</td><td>0.77</td>" in page
    assert "<td>teacher</td><td>0.1111</td>" in page
    assert "<td>student after its head phase</td><td>0.2222</td>" in page
    assert "<td>student after fine-tuning</td><td>0.3434</td>" in page
    assert "WARNING: the teacher is not better" in page
    assert "<td>PTQ INT8</td><td>0.3333</td>" in page and "<td>0.6789</td>" in page
    assert "QAT minus PTQ: +0.0123 (90% of" in page and "-0.0200 to +0.0400" in page
    assert page.count("<img ") == 7  # dataset, three training stages, PR, F1 vs threshold, fidelity
    assert "<h2>Errors on test (INT8, adopted thresholds)</h2>" in page
    assert report.overview_png.startswith(b"\x89PNG")


def test_a_one_epoch_phase_is_drawn_as_points():
    """A phase of one epoch (the demo's QAT) has one value per curve: a line alone would draw
    nothing, so each epoch carries a marker."""
    from stages.common.evaluation.report_charts import plot_training, plt

    curves = {"train/loss": {"step": [0.0], "value": [0.44]},
              "eval/loss": {"step": [0.0], "value": [0.47]},
              "eval/f1_macro": {"step": [0.0], "value": [0.96]}}
    figure, axis = plt.subplots()
    plot_training(axis, "qat", curves, {"qat": {"epochs_run": 1}})
    lines = [line for each in figure.axes for line in each.get_lines()
             if len(line.get_xdata()) == 1]
    assert len(lines) == 3 and all(line.get_marker() == "o" for line in lines)
    plt.close(figure)


def test_the_overview_png_carries_the_quantisation_and_kernel_tables(tmp_path, monkeypatch):
    """The one-page PNG holds what the page's tables say: float / PTQ / QAT on test, and each
    other CPU kernel path against the adopted one (planted values must come out)."""
    import json

    from stages.common.evaluation import report as report_module
    from stages.common.evaluation.report_charts import plt

    files = _run_files(tmp_path)
    _edit(files, "quantization.json", lambda q: q["ptq_int8"].update(test_f1_macro=0.3141))
    _edit(files, "evaluation.json",
          lambda e: e["kernel_paths"]["paths"]["builtin"].update(images_with_other_labels=37))
    drawn = {}
    real = report_module.overview_figure

    def keep(*args):
        drawn["figure"] = real(*args)
        return drawn["figure"]

    monkeypatch.setattr(report_module, "overview_figure", keep)
    build_report(files)
    texts = [text.get_text() for axis in drawn["figure"].axes for table in axis.tables
             for text in (cell.get_text() for cell in table.get_celld().values())]
    evaluation = json.loads((files.metrics / "evaluation.json").read_text())
    assert "0.3141" in texts and "PTQ INT8" in texts and "QAT INT8 (shipped)" in texts
    assert "37" in texts and "test (evaluate)" in texts and "builtin" in texts
    assert f"{evaluation['f1_macro']:.3f}" in texts  # the metrics table too
    plt.close(drawn["figure"])


def test_the_errors_section_lists_each_wrong_image_with_its_scores(tmp_path):
    files = _run_files(tmp_path)
    errors = {"total": 3, "images": [
        {"index": 4, "image": "test_0004.jpg",
         "false_positives": [{"class": "ring", "score": 0.6123, "threshold": 0.38}],
         "false_negatives": [{"class": "cross", "score": 0.2071, "threshold": 0.38}]},
        {"index": 9, "image": "outdoor/test_0009.jpg", "false_positives": [],
         "false_negatives": [{"class": "square", "score": 0.1, "threshold": 0.5}]}]}
    (files.metrics / "test_errors.json").write_text(__import__("json").dumps(errors))
    page = build_report(files).html
    assert ("3 of 80 test images get another label set than their own (the first 2 shown, in test "
            "order)") in page
    assert ("<td>test_0004.jpg</td><td>ring (0.612 &gt;= 0.38)</td><td>cross (0.207 &lt; 0.38)"
            "</td>") in page
    assert "<td>outdoor/test_0009.jpg</td><td></td><td>square (0.100 &lt; 0.50)</td>" in page


def test_the_teacher_verdict_says_when_the_student_fell_back_to_the_labels():
    from stages.common.evaluation.report_page import teacher_verdict

    check = {"distillation_alpha": 0.7, "teacher_is_better": True,
             "teacher_ahead_of_finetuned_student": False, "labels_only_from_finetune_epoch": 3}
    assert "trained on the labels alone from fine-tune epoch 3" in teacher_verdict(
        {"teacher_check": check})
    before = {**check, "teacher_is_better": False, "labels_only_from_finetune_epoch": 1}
    assert "fine-tuned on the labels alone" in teacher_verdict({"teacher_check": before})
    # a run from before the rule existed, or under the seed's rule: the warning as before
    seed_rule = {key: value for key, value in check.items()
                 if key != "labels_only_from_finetune_epoch"}
    assert teacher_verdict({"teacher_check": seed_rule}).startswith("WARNING: the student ended")
