"""Time-to-quality: val macro-F1 against wall time, from the logs of whole pipeline runs.

A run's log is the output of ``dvc exp run`` with each line prefixed by the seconds since the
run started (``stamp``). Every epoch line of the training stages ("train_student finetune: epoch
3/8: ... val_f1_macro 0.4343 (...)") becomes a point; ``chart`` draws one line per run for the
model that ships (the student, then QAT) and a faint one for its teacher, and marks where each
run ended (export, thresholds and evaluation included). A run made in parts (the teacher by
``dvc repro train_teacher``, then ``dvc exp run`` with the teacher stage cached) is read from its
parts' logs in order (``read_run``), each part starting where the one before it ended.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Iterable, TextIO

EPOCH_LINE = re.compile(r"^\s*(?P<seconds>\d+(?:\.\d+)?) (?P<stage>train_teacher|train_student|qat)"
                        r" (?P<phase>\w+): epoch (?P<epoch>\d+)/(?P<epochs>\d+): .*"
                        r"val_f1_macro (?P<f1>\d+(?:\.\d+)?)")
STAMPED_LINE = re.compile(r"^\s*(?P<seconds>\d+(?:\.\d+)?) ")


@dataclass
class RunCurve:
    """One run: (seconds, val macro-F1 at 0.5) per epoch of each training stage, and its end."""

    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    ended_s: float | None = None


def stamp(lines: Iterable[str], out: TextIO, clock=time.monotonic) -> None:
    """Copy ``lines`` to ``out``, each prefixed by the seconds since the first was asked for."""
    started = clock()
    for line in lines:
        out.write(f"{clock() - started:8.1f} {line}")
        out.flush()


def read_curve(text: str) -> RunCurve:
    """The epochs and end of one stamped log."""
    return read_run([text])


def read_run(texts: Iterable[str]) -> RunCurve:
    """One run from the stamped logs of its parts, in the order they ran: each part's times are
    counted from where the one before it ended."""
    curve = RunCurve()
    for text in texts:
        offset = curve.ended_s or 0.0
        for line in text.splitlines():
            stamped = STAMPED_LINE.match(line)
            if stamped:
                curve.ended_s = offset + float(stamped["seconds"])
            epoch = EPOCH_LINE.match(line)
            if epoch:
                curve.points.setdefault(epoch["stage"], []).append(
                    (offset + float(epoch["seconds"]), float(epoch["f1"])))
    return curve


def chart(curves: dict[str, RunCurve], title: str) -> bytes:
    """PNG: the shipped model's val macro-F1 against minutes since the run started."""
    from stages.common.evaluation.report_charts import figure_png, plt

    figure, axis = plt.subplots(figsize=(9, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, curve), colour in zip(curves.items(), colours * 4):
        shipped = curve.points.get("train_student", []) + curve.points.get("qat", [])
        teacher = curve.points.get("train_teacher", [])
        if teacher:
            axis.plot([s / 60 for s, _ in teacher], [f for _, f in teacher], color=colour,
                      alpha=0.35, linestyle="--", marker=".")
        if shipped:
            axis.plot([s / 60 for s, _ in shipped], [f for _, f in shipped], color=colour,
                      marker="o", label=label)
            if curve.ended_s is not None:
                axis.axvline(curve.ended_s / 60, color=colour, alpha=0.4, linestyle=":")
    axis.set_xlabel("minutes since the run started (dotted: the run's end, every stage done)")
    axis.set_ylabel("val macro-F1 at 0.5 (dashed: the teacher)")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", fontsize=9)
    axis.set_title(title, fontsize=11)
    figure.tight_layout()
    return figure_png(figure)
