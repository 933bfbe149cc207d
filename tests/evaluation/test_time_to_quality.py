"""Time-to-quality: stamped run logs read into curves, and the chart and its command line."""
import io
import subprocess
import sys
from pathlib import Path

from stages.common.evaluation.time_to_quality import read_curve, read_run, stamp

REPO = Path(__file__).resolve().parents[2]
LOG = """\
     3.1 Running stage 'train_teacher':
    41.3 train_teacher head: epoch 1/1: loss 0.5910, val_loss 0.5408, val_f1_macro 0.0668 (19.3 s, ~0.0 min left in phase)
   107.6 train_student head: epoch 1/1: loss 0.5516, val_loss 0.5423, val_f1_macro 0.0874 (14.5 s, ~0.0 min left in phase)
   149.3 train_student finetune: epoch 1/8: loss 0.4672, hard_loss 0.4672, soft_loss 0.5870, val_loss 0.5062, val_f1_macro 0.0049 (39.9 s, ~4.7 min left in phase)
   300.0 qat qat: epoch 1/1: loss 1.0520, hard_loss 0.4004, soft_loss 0.6431, val_loss 1.1109, val_f1_macro 0.0429 (63.4 s, ~0.0 min left in phase)
   310.0 train_student: val macro-F1 0.9999 at 0.5 (a summary line, not an epoch)
   420.5 Running stage 'report':
"""


def test_a_stamped_log_gives_each_stages_epochs_and_the_runs_end():
    curve = read_curve(LOG)
    assert curve.points == {"train_teacher": [(41.3, 0.0668)],
                            "train_student": [(107.6, 0.0874), (149.3, 0.0049)],
                            "qat": [(300.0, 0.0429)]}
    assert curve.ended_s == 420.5


def test_a_run_in_parts_counts_each_parts_times_from_where_the_one_before_it_ended():
    teacher_part = "     2.0 Running stage 'prepare':\n" + LOG.splitlines(keepends=True)[1] + \
        "    60.0 Use `dvc push` to send your updates to remote storage.\n"
    student_part = LOG.splitlines(keepends=True)[2]  # 107.6 train_student head: ...
    curve = read_run([teacher_part, student_part, "     5.5 Running stage 'report':\n"])
    assert curve.points == {"train_teacher": [(41.3, 0.0668)],
                            "train_student": [(60.0 + 107.6, 0.0874)]}
    assert curve.ended_s == 60.0 + 107.6 + 5.5


def test_stamp_prefixes_the_seconds_since_it_started():
    ticks = iter([10.0, 10.5, 12.25])
    out = io.StringIO()
    stamp(["a\n", "b\n"], out, clock=lambda: next(ticks))
    assert out.getvalue() == "     0.5 a\n     2.2 b\n"


def test_the_chart_command_draws_and_refuses_a_log_without_epochs(tmp_path):
    (tmp_path / "run.log").write_text(LOG)
    (tmp_path / "empty.log").write_text("     1.0 Running stage 'prepare':\n")
    command = [sys.executable, "-m", "tools.time_to_quality", "chart", "--out",
               str(tmp_path / "chart.png")]
    done = subprocess.run(command + [f"fast={tmp_path / 'run.log'}"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
    parts = subprocess.run(command + [f"distilled={tmp_path / 'empty.log'}+{tmp_path / 'run.log'}"],
                           cwd=REPO, capture_output=True, text=True)
    assert parts.returncode == 0, parts.stderr
    missing = subprocess.run(command + [f"x={tmp_path / 'run.log'}+{tmp_path / 'none.log'}"],
                             cwd=REPO, capture_output=True, text=True)
    assert missing.returncode == 2 and "none.log: give the log of a stamped run" in missing.stderr
    refused = subprocess.run(command + [f"x={tmp_path / 'empty.log'}"], cwd=REPO,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "no stamped epoch line" in refused.stderr
    assert "Traceback" not in refused.stderr
    malformed = subprocess.run(command + [str(tmp_path / "run.log")], cwd=REPO,
                               capture_output=True, text=True)
    assert malformed.returncode == 2 and "expected LABEL=LOG" in malformed.stderr
