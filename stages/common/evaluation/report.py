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
A missing input is a user error naming the file and the stage that writes it.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402

from stages.common.core import layout
from stages.common.core.errors import UserError  # noqa: E402

TRAINING_STAGES = ("train_teacher", "train_student", "qat")
DISTILLED = {"train_student": "fine-tune loss: alpha*hard + (1-alpha)*T^2*soft (distillation)",
             "qat": "loss: alpha*hard + (1-alpha)*T^2*soft (distillation)"}
WRITTEN_BY = {
    "data_report.json": "prepare",
    "teacher.json": "train_teacher",
    "student.json": "train_student",
    "qat.json": "qat",
    "export.json": "export",
    "thresholds.json": "thresholds",
    "evaluation.json": "evaluate",
    "quantization.json": "compare_quantization",
}
QUANTIZATION_NAMES = {"float_student": "float student", "ptq_int8": "PTQ INT8",
                      "qat_int8": "QAT INT8 (shipped)"}


@dataclass
class RunFiles:
    """Where a run's tracked results live (the pipeline's defaults)."""

    metrics: Path = layout.METRICS
    live: Path = layout.LIVE

    def json(self, name: str) -> dict:
        path = self.metrics / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path}: missing; it is written by the stage "
                            f"{WRITTEN_BY.get(name, '?')} (dvc repro)") from None
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None


def _read_table(path: Path, delimiter: str) -> dict[str, list[float]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=delimiter))
    if not rows:
        return {}
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


def training_curves(live_dir: Path) -> dict[str, dict[str, list[float]]]:
    """{"train/loss": [...], "eval/f1_macro": [...], ...} indexed by epoch (dvclive step)."""
    curves = {}
    root = live_dir / "plots" / "metrics"
    for path in sorted(root.glob("*/*.tsv")):
        table = _read_table(path, "\t")
        if table:
            curves[f"{path.parent.name}/{path.stem}"] = {"step": table["step"],
                                                         "value": table[path.stem]}
    return curves


def pr_curves(curves_dir: Path, classes: list[str]) -> dict[str, dict[str, list[float]]]:
    """The evaluate stage's per-class tables; files are named NNN_<class>.csv in class order."""
    files = sorted(curves_dir.glob("*.csv"))
    if len(files) != len(classes):
        raise UserError(f"{curves_dir}: {len(files)} PR tables for {len(classes)} classes; "
                        "rerun the evaluate stage (dvc repro evaluate)")
    return {name: _read_table(path, ",") for name, path in zip(classes, files)}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _plot_dataset(axis, data_report: dict) -> None:
    classes = list(data_report["class_frequency"])
    splits = list(data_report["splits"])
    width = 0.8 / len(splits)
    for offset, split in enumerate(splits):
        counts = [data_report["class_frequency"][name][split] for name in classes]
        positions = [i + (offset - (len(splits) - 1) / 2) * width for i in range(len(classes))]
        axis.bar(positions, counts, width, label=f"{split} ({data_report['splits'][split]['images']} images)")
    axis.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    axis.set_ylabel("images with the label")
    axis.set_title("Dataset: label frequency per split")
    axis.legend(fontsize=8)


def _plot_training(axis, stage: str, curves: dict, phases: dict) -> None:
    for key, style in (("train/loss", "-"), ("eval/loss", "--")):
        if key in curves:
            axis.plot(curves[key]["step"], curves[key]["value"], style, label=key.replace("eval", "val"))
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    if "eval/f1_macro" in curves:
        f1_axis = axis.twinx()
        f1_axis.plot(curves["eval/f1_macro"]["step"], curves["eval/f1_macro"]["value"], ":",
                     color="tab:green", label="val macro-F1 @0.5")
        f1_axis.set_ylim(0, 1.02)
        f1_axis.set_ylabel("macro-F1")
        f1_axis.legend(loc="lower right", fontsize=8)
    if "head" in phases and len(phases) > 1:
        axis.axvline(phases["head"]["epochs_run"] - 0.5, color="gray", linewidth=0.8)
    axis.set_title(f"{stage}: " + " -> ".join(f"{name} {summary['epochs_run']} ep"
                                               for name, summary in phases.items()))
    if stage in DISTILLED:
        # The loss changes meaning where distillation starts; say so rather than leave a jump.
        axis.text(0.02, 0.02, DISTILLED[stage], transform=axis.transAxes, fontsize=7, color="gray")
    axis.legend(loc="upper right", fontsize=8)


def _plot_pr(axis, curves: dict, per_class: list[dict]) -> None:
    for entry in per_class:
        table = curves[entry["class"]]
        if not table:
            continue
        line, = axis.plot(table["recall"], table["precision"], label=f"{entry['class']} "
                          f"(t={entry['threshold']:.2f}, F1 {entry['f1']:.3f})")
        axis.plot([entry["recall"]], [entry["precision"]], "o", color=line.get_color())
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_xlim(0, 1.02)
    axis.set_ylim(0, 1.02)
    axis.set_title("Test PR curves (INT8); dots: adopted thresholds")
    axis.legend(fontsize=7, loc="lower left")


def _plot_f1_threshold(axis, table: dict, recommendation: dict) -> None:
    axis.plot(table["threshold"], table["f1_macro"])
    axis.axvline(recommendation["global_threshold"], color="tab:red", linestyle="--",
                 label=f"global {recommendation['global_threshold']:.2f} "
                       f"(F1 {recommendation['val_f1_macro_global']:.3f})")
    axis.set_xlabel("threshold (same for every class)")
    axis.set_ylabel("val macro-F1 (INT8)")
    axis.set_ylim(0, 1.02)
    axis.set_title(f"F1 vs threshold; adopted: {recommendation['adopted']}")
    axis.legend(fontsize=8)


def _plot_fidelity(axis, export: dict) -> None:
    splits = [key.removeprefix("fidelity_") for key in export if key.startswith("fidelity_")]
    measures = (("max_abs_probability_difference", "max |dp|"),
                ("mean_abs_probability_difference", "mean |dp|"),
                ("identical_decisions_at_0.5", "same decisions @0.5"))
    width = 0.8 / max(1, len(splits))
    for offset, split in enumerate(splits):
        values = [export[f"fidelity_{split}"][key] for key, _ in measures]
        positions = [i + (offset - (len(splits) - 1) / 2) * width for i in range(len(measures))]
        bars = axis.bar(positions, values, width, label=split)
        axis.bar_label(bars, fmt="%.3f", fontsize=7)
    axis.set_xticks(range(len(measures)), [label for _, label in measures])
    axis.set_ylim(0, 1.1)
    axis.set_title(f"INT8 vs float QAT ({export['file_bytes'] / 1e6:.1f} MB model)")
    axis.legend(fontsize=8)


def _metrics_rows(evaluation: dict) -> list[list[str]]:
    rows = [[entry["class"], f"{entry['threshold']:.2f}", f"{entry['precision']:.3f}",
             f"{entry['recall']:.3f}", f"{entry['f1']:.3f}", str(entry["support"])]
            for entry in evaluation["per_class"]]
    rows.append(["macro", "", f"{evaluation['precision_macro']:.3f}",
                 f"{evaluation['recall_macro']:.3f}", f"{evaluation['f1_macro']:.3f}", ""])
    rows.append(["micro-F1", "", "", "", f"{evaluation['f1_micro']:.3f}", ""])
    return rows


METRIC_COLUMNS = ["class", "threshold", "precision", "recall", "F1", "support"]


def _plot_metrics_table(axis, evaluation: dict) -> None:
    axis.axis("off")
    table = axis.table(cellText=_metrics_rows(evaluation), colLabels=METRIC_COLUMNS, loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.3)
    axis.set_title(f"Test, INT8, adopted thresholds ({evaluation['images']} images)")


@dataclass
class Report:
    html: str
    overview_png: bytes


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
        raise UserError(f"{f1_table_path}: missing; it is written by the stage thresholds (dvc repro)")
    f1_table = _read_table(f1_table_path, ",")
    pr = pr_curves(files.metrics / "plots" / "pr", classes)
    curves = {stage: training_curves(files.live / stage) for stage in TRAINING_STAGES}

    def panel(draw, *args, size=(6.4, 4.0)):
        figure, axis = plt.subplots(figsize=size)
        draw(axis, *args)
        return _png(figure)

    panels = {
        "dataset": panel(_plot_dataset, data_report),
        **{stage: panel(_plot_training, stage, curves[stage], stage_metrics[stage]["phases"])
           for stage in TRAINING_STAGES},
        "pr": panel(_plot_pr, pr, evaluation["per_class"], size=(6.4, 5.0)),
        "f1_vs_threshold": panel(_plot_f1_threshold, f1_table, recommendation),
        "fidelity": panel(_plot_fidelity, export),
    }

    figure, axes = plt.subplots(3, 3, figsize=(19, 14))
    _plot_dataset(axes[0, 0], data_report)
    for axis, stage in zip(axes[0, 1:], TRAINING_STAGES[:2]):
        _plot_training(axis, stage, curves[stage], stage_metrics[stage]["phases"])
    _plot_training(axes[1, 0], "qat", curves["qat"], stage_metrics["qat"]["phases"])
    _plot_pr(axes[1, 1], pr, evaluation["per_class"])
    _plot_f1_threshold(axes[1, 2], f1_table, recommendation)
    _plot_fidelity(axes[2, 0], export)
    _plot_metrics_table(axes[2, 1], evaluation)
    axes[2, 2].axis("off")
    axes[2, 2].text(0, 0.5, _summary_text(data_report, stage_metrics, export, recommendation,
                                          evaluation, quantization),
                    fontsize=10, family="monospace", va="center")
    figure.suptitle(title, fontsize=16)
    figure.tight_layout()
    overview = _png(figure)
    return Report(_html(title, panels, data_report, stage_metrics, export, recommendation,
                        evaluation, quantization), overview)


def teacher_rows(student_metrics: dict) -> list[list[str]]:
    """The teacher check (train_student): the teacher against the student's head phase, on val."""
    check = student_metrics["teacher_check"]
    return [["teacher", f"{check['teacher_val_f1_macro_at_0.5']:.4f}",
             f"{check['teacher_val_f1_macro_tuned']:.4f} (at {check['teacher_tuned_threshold']:.2f})"],
            ["student after its head phase", f"{check['student_head_val_f1_macro_at_0.5']:.4f}", ""]]


def teacher_verdict(student_metrics: dict) -> str:
    check = student_metrics["teacher_check"]
    if check["distillation_alpha"] >= 1.0:
        return "distillation.alpha is 1.0: the teacher is not used"
    if check["teacher_is_better"]:
        return "the teacher is better: distillation can help"
    return ("WARNING: the teacher is not better than the student it teaches; set "
            "distillation.alpha: 1.0 or train a better teacher")


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
        f"thresholds: {recommendation['adopted']} (val {recommendation['val_f1_macro_per_class']:.3f}"
        f" vs global {recommendation['val_f1_macro_global']:.3f})",
        f"test INT8 macro-F1: {evaluation['f1_macro']:.3f}, micro {evaluation['f1_micro']:.3f}",
        f"test macro-F1: float {quantization['float_student']['test_f1_macro']:.3f}, PTQ "
        f"{quantization['ptq_int8']['test_f1_macro']:.3f}, QAT {quantization['qat_int8']['test_f1_macro']:.3f}",
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
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _html(title, panels, data_report, stage_metrics, export, recommendation, evaluation,
          quantization) -> str:
    split_rows = [[name, info["images"], f"{info['labels_per_image_mean']:.2f}",
                   info["labels_per_image_max"], f"{info['no_label_rate']:.3f}",
                   f"{info['multi_label_rate']:.3f}"] for name, info in data_report["splits"].items()]
    size = data_report["image_size"]
    training_rows = [[stage, f"{metrics['val_f1_macro']:.3f}", f"{metrics['val_loss']:.4f}",
                      ", ".join(f"{name} {summary['epochs_run']} ep"
                                f"{' (stopped early)' if summary['stopped_early'] else ''}"
                                for name, summary in metrics["phases"].items()),
                      f"{metrics['wall_time_s']:.0f}"]
                     for stage, metrics in stage_metrics.items()]
    fidelity_rows = [[key.removeprefix("fidelity_"), value["images"],
                      f"{value['max_abs_probability_difference']:.4f}",
                      f"{value['mean_abs_probability_difference']:.4f}",
                      f"{value['identical_decisions_at_0.5']:.4f}",
                      f"{value['f1_macro_int8_at_0.5']:.4f}", f"{value['f1_macro_float_qat_at_0.5']:.4f}"]
                     for key, value in export.items() if key.startswith("fidelity_")]
    kernels = evaluation["kernel_paths"]
    kernel_rows = [[f"{split} (export)", name, value["images"], f"{value['differing_outputs']:.2%}",
                    value["max_difference"], "0.5", value["images_with_other_labels"], "", ""]
                   for split in ("val", "test")
                   for name, value in export["kernel_paths"][split].items()]
    kernel_rows += [["test (evaluate)", name, value["images"], f"{value['differing_outputs']:.2%}",
                     value["max_difference"], "adopted", value["images_with_other_labels"],
                     f"{value['f1_macro']:.4f} ({value['f1_macro_change']:+.4f})",
                     "yes" if value["material"] else "no"]
                    for name, value in kernels["paths"].items()]
    sections = [
        ("Summary", f"<pre>{html.escape(_summary_text(data_report, stage_metrics, export, recommendation, evaluation, quantization))}</pre>"),
        ("Dataset", _table(["split", "images", "labels/image", "max labels", "no-label rate",
                            "multi-label rate"], split_rows)
         + f"<p>image sizes: height {size['height_min']}..{size['height_max']}, width "
           f"{size['width_min']}..{size['width_max']}, aspect ratio "
           f"{size['aspect_ratio_min']}..{size['aspect_ratio_max']}</p>"
         + _image(panels["dataset"], "label frequency")),
        ("Training", _table(["stage", "val macro-F1 @0.5", "val loss", "phases", "wall time (s)"],
                            training_rows)
         + "".join(_image(panels[stage], stage) for stage in TRAINING_STAGES)),
        ("Teacher check (val, before distillation)",
         _table(["model", "val macro-F1 @0.5", "val macro-F1, best threshold"],
                teacher_rows(stage_metrics["train_student"]))
         + f"<p>{html.escape(teacher_verdict(stage_metrics['train_student']))}</p>"),
        ("Thresholds (val, INT8)", _image(panels["f1_vs_threshold"], "F1 vs threshold")
         + _table(["class", "adopted threshold"],
                  [[entry["class"], f"{entry['threshold']:.2f}"] for entry in evaluation["per_class"]])),
        ("Test metrics (INT8, adopted thresholds)", _table(METRIC_COLUMNS, _metrics_rows(evaluation))
         + _image(panels["pr"], "PR curves")),
        ("Quantisation: float student, PTQ and QAT (test)",
         _table(QUANTIZATION_COLUMNS, quantization_rows(quantization))
         + "<p>Each model at its own thresholds, tuned on val with the same search. PTQ: the "
           "float student quantised after training (what Model Maker does); QAT: the shipped "
           "model.</p>"
         + f"<p>{html.escape(quantization_gaps(quantization))}</p>"),
        ("INT8 vs float fidelity", _table(["split", "images", "max |dp|", "mean |dp|",
                                           "same decisions @0.5", "INT8 macro-F1 @0.5",
                                           "float macro-F1 @0.5"], fidelity_rows)
         + _image(panels["fidelity"], "fidelity")),
        (f"CPU kernels against {kernels['adopted']} (the path the thresholds were tuned on)",
         _table(["split", "kernels", "images", "int8 outputs that differ", "largest difference",
                 "thresholds", "images with other labels", "macro-F1 (change)", "material"],
                kernel_rows) + f"<p>{html.escape(kernels['rule'])}</p>"),
    ]
    body = "".join(f"<h2>{html.escape(name)}</h2>{content}" for name, content in sections)
    style = ("body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse;"
             "margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "img{max-width:49%;vertical-align:top}")
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
        raise UserError(f"{metrics_path}: missing; it is written by the stage package (dvc repro)") from None
    files = sorted(path.name for path in output_dir.iterdir())
    return (f"outputs ({len(files)} files) in {output_dir}/: {', '.join(files)}\n"
            f"report: {report_dir / 'report.html'} (overview {report_dir / 'report.png'})\n"
            f"test, INT8, adopted thresholds: macro-F1 {metrics['f1_macro']:.4f}, micro-F1 "
            f"{metrics['f1_micro']:.4f}, precision {metrics['precision_macro']:.4f}, "
            f"recall {metrics['recall_macro']:.4f}")
