"""The visual report of one run: a self-contained HTML page and an overview PNG, viewable offline.

Everything is drawn from files the pipeline already wrote (metrics/*.json, the dvclive curves,
the PR and F1-vs-threshold tables), so the report shows exactly the numbers DVC tracks:
- dataset statistics (metrics/data_report.json);
- training curves of teacher, student and QAT (dvclive/<stage>/plots/metrics), with the phase
  boundary (head -> fine-tune) marked;
- per-class precision-recall curves of the INT8 model on test, with each adopted threshold marked;
- validation macro-F1 against the threshold (the search of the thresholds stage);
- INT8-vs-float fidelity (metrics/export.json);
- the other CPU kernels against XNNPACK (metrics/export.json, metrics/evaluation.json);
- the final metrics table (metrics/evaluation.json).
A missing input is a user error naming the file and the stage that writes it (run_results).
The charts are drawn once each (report_charts): the page (report_page) shows them one by one,
the overview lays the same images out on one page with the metrics, the float / PTQ / QAT and the
CPU-kernel tables and a summary. A curve of few epochs marks each one, so a one-epoch phase shows.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from stages.common.core.errors import UserError
from stages.common.evaluation import report_charts as charts
from stages.common.evaluation.report_charts import plt
from stages.common.evaluation.report_page import (
    KERNEL_COLUMNS,
    QUANTIZATION_COLUMNS,
    kernel_rows,
    page_html,
    quantization_rows,
    summary_text,
)
from stages.common.evaluation.run_results import (
    TRAINING_STAGES,
    RunFiles,
    pr_curves,
    read_table,
    training_curves,
)


@dataclass
class Report:
    html: str
    overview_png: bytes


# The overview's 3 x 4 grid, row by row: the panels, then the tables and the summary
OVERVIEW_PANELS = ("dataset", *TRAINING_STAGES, "pr", "f1_vs_threshold", "fidelity")


def build_report(files: RunFiles, title: str = "Run report") -> Report:
    data_report = files.json("data_report.json")
    stage_metrics = {stage: files.json(name) for stage, name in
                     zip(TRAINING_STAGES, ("teacher.json", "student.json", "qat.json"))}
    export = files.json("export.json")
    recommendation = files.json("thresholds.json")
    evaluation = files.json("evaluation.json")
    quantization = files.json("quantization.json")
    classes = [entry["class"] for entry in evaluation["per_class"]]
    f1_table_path = files.metrics / "plots" / "f1_vs_threshold.csv"
    if not f1_table_path.exists():
        raise UserError(f"{f1_table_path}: missing; it is written by the stage thresholds "
                        "(dvc repro)")
    f1_table = read_table(f1_table_path, ",")
    pr = pr_curves(files.metrics / "plots" / "pr", classes)
    curves = {stage: training_curves(files.live / stage) for stage in TRAINING_STAGES}
    errors = files.json("test_errors.json")

    panels = {
        "dataset": charts.panel_png(charts.plot_dataset, data_report),
        **{stage: charts.panel_png(charts.plot_training, stage, curves[stage],
                                   stage_metrics[stage]["phases"])
           for stage in TRAINING_STAGES},
        "pr": charts.panel_png(charts.plot_pr, pr, evaluation["per_class"], size=(6.4, 5.0)),
        "f1_vs_threshold": charts.panel_png(charts.plot_f1_threshold, f1_table, recommendation),
        "fidelity": charts.panel_png(charts.plot_fidelity, export),
    }
    if files.shards is not None and errors["images"]:
        panels["errors"] = charts.gallery_png(
            error_thumbnails(files, [entry["index"] for entry in errors["images"]]),
            errors["images"])
    summary = summary_text(data_report, stage_metrics, export, recommendation, evaluation,
                            quantization)
    overview = overview_figure(title, panels, evaluation, summary, quantization,
                               kernel_rows(export, evaluation))
    return Report(page_html(title, panels, data_report, stage_metrics, export, recommendation,
                        evaluation, quantization, errors), charts.figure_png(overview))


def error_thumbnails(files: RunFiles, indices: list[int]) -> list:
    """The test images at ``indices`` as the student saw them (letterboxed, from the shards)."""
    import numpy as np

    from stages.common.data.dataset import load_prepared
    from stages.common.data.tfrecord_shards import Shards

    shards = Shards.open(files.shards, load_prepared(files.prepared))
    chunks = list(shards.pixel_chunks("test", "student", indices=np.array(indices)))
    return list(np.concatenate(chunks)) if chunks else []


def overview_figure(title: str, panels: dict[str, bytes], evaluation: dict, summary: str,
                    quantization: dict, kernels: list[list]):
    """One page: the panels as drawn for the HTML page; the metrics, the float / PTQ / QAT and
    the CPU-kernel tables; the summary."""
    figure = plt.figure(figsize=(25, 14))
    grid = figure.add_gridspec(3, 4)
    for index, name in enumerate(OVERVIEW_PANELS):
        axis = figure.add_subplot(grid[index // 4, index % 4])
        axis.imshow(plt.imread(io.BytesIO(panels[name]), format="png"))
        axis.axis("off")
    charts.plot_table(figure.add_subplot(grid[1, 3]), QUANTIZATION_COLUMNS,
                      quantization_rows(quantization),
                      "Float student, PTQ and QAT (test, each at its tuned thresholds)", 7)
    charts.plot_metrics_table(figure.add_subplot(grid[2, 0]), evaluation)
    charts.plot_table(figure.add_subplot(grid[2, 1:3]), KERNEL_COLUMNS, kernels,
                      f"CPU kernels against {evaluation['kernel_paths']['adopted']} (the path the "
                      "thresholds were tuned on)", 7)
    summary_axis = figure.add_subplot(grid[2, 3])
    summary_axis.axis("off")
    summary_axis.text(0, 0.5, summary, fontsize=9, family="monospace", va="center")
    figure.suptitle(title, fontsize=16)
    figure.tight_layout()
    return figure


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    page, overview = out_dir / "report.html", out_dir / "report.png"
    page.write_text(report.html)
    overview.write_bytes(report.overview_png)
    return page, overview


def headline(output_dir: Path, report_dir: Path) -> str:
    """What a user wants after a run: where the results are and the headline numbers."""
    metrics_path = output_dir / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"{metrics_path}: missing; it is written by the stage package (dvc repro)"
        ) from None
    files = sorted(path.name for path in output_dir.iterdir())
    return (f"outputs ({len(files)} files) in {output_dir}/: {', '.join(files)}\n"
            f"report: {report_dir / 'report.html'} (overview {report_dir / 'report.png'})\n"
            f"test, INT8, adopted thresholds: macro-F1 {metrics['f1_macro']:.4f}, micro-F1 "
            f"{metrics['f1_micro']:.4f}, precision {metrics['precision_macro']:.4f}, "
            f"recall {metrics['recall_macro']:.4f}")
