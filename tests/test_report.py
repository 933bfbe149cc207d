"""The visual report: what it reads, and the message when a stage's output is missing."""

import pytest

from stages.common.errors import UserError
from stages.common.report import RunFiles, build_report, pr_curves, training_curves


def test_missing_metrics_name_the_file_and_the_stage(tmp_path):
    with pytest.raises(UserError, match=r"data_report.json: missing; it is written by the stage prepare"):
        build_report(RunFiles(tmp_path / "metrics", tmp_path / "dvclive"))


def test_broken_json_names_the_line(tmp_path):
    (tmp_path / "data_report.json").write_text('{\n  "num_classes": 5,\n  oops\n}')
    with pytest.raises(UserError, match=r"data_report.json:3: not valid JSON"):
        RunFiles(tmp_path).json("data_report.json")


def test_training_curves_read_dvclive_tables(tmp_path):
    folder = tmp_path / "plots" / "metrics" / "eval"
    folder.mkdir(parents=True)
    (folder / "f1_macro.tsv").write_text("step\tf1_macro\n0\t0.25\n1\t0.5\n")
    assert training_curves(tmp_path) == {"eval/f1_macro": {"step": [0.0, 1.0], "value": [0.25, 0.5]}}


def test_pr_tables_must_match_the_classes(tmp_path):
    (tmp_path / "000_a.csv").write_text("threshold,precision,recall\n0.9,1.0,0.5\n")
    assert pr_curves(tmp_path, ["a"])["a"]["recall"] == [0.5]
    with pytest.raises(UserError, match="1 PR tables for 2 classes"):
        pr_curves(tmp_path, ["a", "b"])
