"""The report's HTML page and the text beside its charts: the tables (teacher check, float /
PTQ / QAT, CPU kernels, metrics), the error gallery's listing and the summary, escaped for HTML
and self-contained (the charts inline as PNG data)."""
from __future__ import annotations

import base64
import html

from stages.common.evaluation import report_charts as charts
from stages.common.evaluation.run_results import (
    TRAINING_STAGES,
)

QUANTIZATION_NAMES = {"float_student": "float student", "ptq_int8": "PTQ INT8",
                      "qat_int8": "QAT INT8 (shipped)"}


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
    gallery = html_image(panels["errors"], "error gallery") if "errors" in panels else ""
    return text + gallery + html_table(["image", "false positives", "false negatives"],
                                   error_rows(errors))


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
    since = check.get("labels_only_from_finetune_epoch")
    if since == 1:
        return ("the teacher is not better than the student after its head phase: the student "
                "fine-tuned on the labels alone (distillation.if_teacher_not_better: labels)")
    if since:
        return (f"the student reached its teacher on val: it trained on the labels alone from "
                f"fine-tune epoch {since} (distillation.if_teacher_not_better: labels)")
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


def summary_text(data_report, stage_metrics, export, recommendation, evaluation,
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


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_image(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def page_html(title, panels, data_report, stage_metrics, export, recommendation, evaluation,
          quantization, errors) -> str:
    summary = summary_text(data_report, stage_metrics, export, recommendation, evaluation,
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
            html_table(
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
            + html_image(panels["dataset"], "label frequency"),
        ),
        (
            "Training",
            html_table(
                ["stage", "val macro-F1 @0.5", "val loss", "phases", "wall time (s)"], training_rows
            )
            + "".join(html_image(panels[stage], stage) for stage in TRAINING_STAGES),
        ),
        (
            "Teacher check (val, before distillation)",
            html_table(
                ["model", "val macro-F1 @0.5", "val macro-F1, best threshold"],
                teacher_rows(stage_metrics["train_student"]),
            )
            + f"<p>{html.escape(teacher_verdict(stage_metrics['train_student']))}</p>",
        ),
        (
            "Thresholds (val, INT8)",
            html_image(panels["f1_vs_threshold"], "F1 vs threshold")
            + html_table(
                ["class", "adopted threshold"],
                [
                    [entry["class"], f"{entry['threshold']:.2f}"]
                    for entry in evaluation["per_class"]
                ],
            ),
        ),
        (
            "Test metrics (INT8, adopted thresholds)",
            html_table(charts.METRIC_COLUMNS, charts.metrics_rows(evaluation))
            + html_image(panels["pr"], "PR curves"),
        ),
        ("Errors on test (INT8, adopted thresholds)", errors_section(errors, evaluation, panels)),
        (
            "Quantisation: float student, PTQ and QAT (test)",
            html_table(QUANTIZATION_COLUMNS, quantization_rows(quantization))
            + "<p>Each model at its own thresholds, tuned on val with the same search. PTQ: the "
            "float student quantised after training (what Model Maker does); QAT: the shipped "
            "model.</p>" + f"<p>{html.escape(quantization_gaps(quantization))}</p>",
        ),
        (
            "INT8 vs float fidelity",
            html_table(
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
            + html_image(panels["fidelity"], "fidelity"),
        ),
        (
            f"CPU kernels against {kernels['adopted']} (the path the thresholds were tuned on)",
            html_table(KERNEL_COLUMNS, kernel_rows(export, evaluation))
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
