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
The charts are drawn once each (report_charts): the page shows them one by one, the overview
lays the same images out on one page with the metrics, the float / PTQ / QAT and the CPU-kernel
tables and a summary. A curve of few epochs marks each one, so a one-epoch phase shows.
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

from stages.common.core.errors import UserError
from stages.common.evaluation import report_charts as charts
from stages.common.evaluation.report_charts import plt
from stages.common.evaluation.run_results import (
    TRAINING_STAGES,
    RunFiles,
    pr_curves,
    read_table,
    training_curves,
)

QUANTIZATION_NAMES = {"float_student": "float student", "ptq_int8": "PTQ INT8",
                      "qat_int8": "QAT INT8 (shipped)"}


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
    summary = _summary_text(data_report, stage_metrics, export, recommendation, evaluation,
                            quantization)
    overview = overview_figure(title, panels, evaluation, summary, quantization,
                               kernel_rows(export, evaluation))
    return Report(_html(title, panels, data_report, stage_metrics, export, recommendation,
                        evaluation, quantization, errors), charts.figure_png(overview))


def error_thumbnails(files: RunFiles, indices: list[int]) -> list:
    """The test images at ``indices`` as the student saw them (letterboxed, from the shards)."""
    import numpy as np

    from stages.common.data.dataset import load_prepared
    from stages.common.data.tfrecord_shards import Shards

    shards = Shards.open(files.shards, load_prepared(files.prepared))
    chunks = list(shards.pixel_chunks("test", "student", indices=np.array(indices)))
    return list(np.concatenate(chunks)) if chunks else []


def error_rows(errors: dict) -> list[list[str]]:
    def listed(entries: list[dict], relation: str) -> str:
        return ", ".join(f"{e['class']} ({e['score']:.3f} {relation} {e['threshold']:.2f})"
                         for e in entries)

    return [[entry["image"], listed(entry["false_positives"], ">="),
             listed(entry["false_negatives"], "<")] for entry in errors["images"]]


def errors_section(errors: dict, evaluation: dict, panels: dict) -> str:
    images = evaluation["images"]
    if not errors["total"]:
        return f"<p>None: each of the {images} test images gets its true label set.</p>"
    shown = len(errors["images"])
    which = "all shown" if shown == errors["total"] else f"the first {shown} shown, in test order"
    text = (f"<p>{errors['total']} of {images} test images get another label set than their "
            f"own ({which}). A false positive is a class predicted (its score at or above its "
            "threshold) that the image does not have; a false negative, one it has whose score "
            "stays below.</p>")
    gallery = _image(panels["errors"], "error gallery") if "errors" in panels else ""
    return text + gallery + _table(["image", "false positives", "false negatives"],
                                   error_rows(errors))


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


KERNEL_COLUMNS = ["split", "kernels", "images", "int8 outputs that differ", "largest difference",
                  "thresholds", "images with other labels", "macro-F1 (change)", "material"]


def kernel_rows(export: dict, evaluation: dict) -> list[list]:
    """The other CPU kernels against the adopted one: on val and test at 0.5 (export), and on
    test at the adopted thresholds (evaluate)."""
    rows = [[f"{split} (export)", name, value["images"], f"{value['differing_outputs']:.2%}",
             value["max_difference"], "0.5", value["images_with_other_labels"], "", ""]
            for split in ("val", "test")
            for name, value in export["kernel_paths"][split].items()]
    rows += [["test (evaluate)", name, value["images"], f"{value['differing_outputs']:.2%}",
              value["max_difference"], "adopted", value["images_with_other_labels"],
              f"{value['f1_macro']:.4f} ({value['f1_macro_change']:+.4f})",
              "yes" if value["material"] else "no"]
             for name, value in evaluation["kernel_paths"]["paths"].items()]
    return rows


def teacher_rows(student_metrics: dict) -> list[list[str]]:
    """The teacher check (train_student): the teacher against the student after its head phase
    and after its fine-tune phase, on val."""
    check = student_metrics["teacher_check"]
    return [
        [
            "teacher",
            f"{check['teacher_val_f1_macro_at_0.5']:.4f}",
            f"{check['teacher_val_f1_macro_tuned']:.4f} "
            f"(at {check['teacher_tuned_threshold']:.2f})",
        ],
        ["student after its head phase", f"{check['student_head_val_f1_macro_at_0.5']:.4f}", ""],
        ["student after fine-tuning", f"{check['student_finetuned_val_f1_macro_at_0.5']:.4f}", ""],
    ]


def teacher_verdict(student_metrics: dict) -> str:
    check = student_metrics["teacher_check"]
    if check["distillation_alpha"] >= 1.0:
        return "distillation.alpha is 1.0: the teacher is not used"
    if not check["teacher_is_better"]:
        return ("WARNING: the teacher is not better than the student it teaches; set "
                "distillation.alpha: 1.0 or train a better teacher")
    if not check["teacher_ahead_of_finetuned_student"]:
        return ("WARNING: the student ended level with or above its teacher: the teacher knew no "
                "more than the student reached; compare with distillation.alpha: 1.0 or train a "
                "stronger teacher")
    return "the teacher is better than the student, before and after fine-tuning"


def quantization_rows(quantization: dict) -> list[list[str]]:
    """Float student, PTQ INT8 and QAT INT8 on test, each at its own val-tuned thresholds."""
    return [[label, f"{quantization[key]['test_f1_macro']:.4f}",
             f"{quantization[key]['test_f1_micro']:.4f}",
             f"{quantization[key]['test_decisions_agree_with_float_student_at_0.5']:.2%}",
             ("" if key == "float_student"
              else f"{quantization[key]['test_decisions_agree_with_own_float_at_0.5']:.2%}"),
             quantization[key]["thresholds_adopted"]]
            for key, label in QUANTIZATION_NAMES.items()]


def quantization_gaps(quantization: dict) -> str:
    """QAT's test macro-F1 minus PTQ's and the float student's, with their bootstrap intervals."""
    parts = []
    for key, other in (("qat_minus_ptq_test_f1_macro", "PTQ"),
                       ("qat_minus_float_test_f1_macro", "the float student")):
        gap = quantization[key]
        low, high = gap["interval_90"]
        parts.append(f"QAT minus {other}: {gap['difference']:+.4f} (90% of {gap['resamples']} "
                     f"resampled test sets: {low:+.4f} to {high:+.4f})")
    return ("; ".join(parts) + ". A difference whose interval contains 0 is within the noise of "
            f"{quantization['qat_minus_ptq_test_f1_macro']['images']} test images.")


QUANTIZATION_COLUMNS = ["model", "test macro-F1", "test micro-F1", "decisions = float student",
                        "decisions = own float", "thresholds"]


def _summary_text(data_report, stage_metrics, export, recommendation, evaluation,
                  quantization) -> str:
    splits = data_report["splits"]
    check = stage_metrics["train_student"]["teacher_check"]
    lines = [
        f"classes: {data_report['num_classes']}",
        "images: " + ", ".join(f"{name} {info['images']}" for name, info in splits.items()),
        f"teacher val macro-F1 @0.5: {stage_metrics['train_teacher']['val_f1_macro']:.3f} "
        f"(student head phase {check['student_head_val_f1_macro_at_0.5']:.3f})",
        f"student val macro-F1 @0.5: {stage_metrics['train_student']['val_f1_macro']:.3f}",
        f"QAT val macro-F1 @0.5:     {stage_metrics['qat']['val_f1_macro']:.3f}",
        f"thresholds: {recommendation['adopted']} "
        f"(val {recommendation['val_f1_macro_per_class']:.3f}"
        f" vs global {recommendation['val_f1_macro_global']:.3f})",
        f"test INT8 macro-F1: {evaluation['f1_macro']:.3f}, micro {evaluation['f1_micro']:.3f}",
        f"test macro-F1: float {quantization['float_student']['test_f1_macro']:.3f}, PTQ "
        f"{quantization['ptq_int8']['test_f1_macro']:.3f}, "
        f"QAT {quantization['qat_int8']['test_f1_macro']:.3f}",
        f"no-label rate: predicted {evaluation['no_label_rate_predicted']:.3f}, "
        f"true {evaluation['no_label_rate_true']:.3f}",
        f"model: {export['file_bytes'] / 1e6:.2f} MB, input uint8 {export['input']['size']} px",
    ]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _html(title, panels, data_report, stage_metrics, export, recommendation, evaluation,
          quantization, errors) -> str:
    summary = _summary_text(data_report, stage_metrics, export, recommendation, evaluation,
                            quantization)
    split_rows = [
        [
            name,
            info["images"],
            f"{info['labels_per_image_mean']:.2f}",
            info["labels_per_image_max"],
            f"{info['no_label_rate']:.3f}",
            f"{info['multi_label_rate']:.3f}",
        ]
        for name, info in data_report["splits"].items()
    ]
    size = data_report["image_size"]
    training_rows = [[stage, f"{metrics['val_f1_macro']:.3f}", f"{metrics['val_loss']:.4f}",
                      ", ".join(f"{name} {summary['epochs_run']} ep"
                                f"{' (stopped early)' if summary['stopped_early'] else ''}"
                                for name, summary in metrics["phases"].items()),
                      f"{metrics['wall_time_s']:.0f}"]
                     for stage, metrics in stage_metrics.items()]
    fidelity_rows = [
        [
            key.removeprefix("fidelity_"),
            value["images"],
            f"{value['max_abs_probability_difference']:.4f}",
            f"{value['mean_abs_probability_difference']:.4f}",
            f"{value['identical_decisions_at_0.5']:.4f}",
            f"{value['f1_macro_int8_at_0.5']:.4f}",
            f"{value['f1_macro_float_qat_at_0.5']:.4f}",
        ]
        for key, value in export.items()
        if key.startswith("fidelity_")
    ]
    kernels = evaluation["kernel_paths"]
    sections = [
        (
            "Summary",
            f"<pre>{html.escape(summary)}</pre>",
        ),
        (
            "Dataset",
            _table(
                [
                    "split",
                    "images",
                    "labels/image",
                    "max labels",
                    "no-label rate",
                    "multi-label rate",
                ],
                split_rows,
            )
            + f"<p>image sizes: height {size['height_min']}..{size['height_max']}, width "
            f"{size['width_min']}..{size['width_max']}, aspect ratio "
            f"{size['aspect_ratio_min']}..{size['aspect_ratio_max']}</p>"
            + _image(panels["dataset"], "label frequency"),
        ),
        (
            "Training",
            _table(
                ["stage", "val macro-F1 @0.5", "val loss", "phases", "wall time (s)"], training_rows
            )
            + "".join(_image(panels[stage], stage) for stage in TRAINING_STAGES),
        ),
        (
            "Teacher check (val, before distillation)",
            _table(
                ["model", "val macro-F1 @0.5", "val macro-F1, best threshold"],
                teacher_rows(stage_metrics["train_student"]),
            )
            + f"<p>{html.escape(teacher_verdict(stage_metrics['train_student']))}</p>",
        ),
        (
            "Thresholds (val, INT8)",
            _image(panels["f1_vs_threshold"], "F1 vs threshold")
            + _table(
                ["class", "adopted threshold"],
                [
                    [entry["class"], f"{entry['threshold']:.2f}"]
                    for entry in evaluation["per_class"]
                ],
            ),
        ),
        (
            "Test metrics (INT8, adopted thresholds)",
            _table(charts.METRIC_COLUMNS, charts.metrics_rows(evaluation))
            + _image(panels["pr"], "PR curves"),
        ),
        ("Errors on test (INT8, adopted thresholds)", errors_section(errors, evaluation, panels)),
        (
            "Quantisation: float student, PTQ and QAT (test)",
            _table(QUANTIZATION_COLUMNS, quantization_rows(quantization))
            + "<p>Each model at its own thresholds, tuned on val with the same search. PTQ: the "
            "float student quantised after training (what Model Maker does); QAT: the shipped "
            "model.</p>" + f"<p>{html.escape(quantization_gaps(quantization))}</p>",
        ),
        (
            "INT8 vs float fidelity",
            _table(
                [
                    "split",
                    "images",
                    "max |dp|",
                    "mean |dp|",
                    "same decisions @0.5",
                    "INT8 macro-F1 @0.5",
                    "float macro-F1 @0.5",
                ],
                fidelity_rows,
            )
            + _image(panels["fidelity"], "fidelity"),
        ),
        (
            f"CPU kernels against {kernels['adopted']} (the path the thresholds were tuned on)",
            _table(KERNEL_COLUMNS, kernel_rows(export, evaluation))
            + f"<p>{html.escape(kernels['rule'])}</p>",
        ),
    ]
    body = "".join(f"<h2>{html.escape(name)}</h2>{content}" for name, content in sections)
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse;"
        "margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "img{max-width:49%;vertical-align:top}"
    )
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


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
