"""The report's charts, each drawn once into a PNG of its own; the report lays them out."""
from __future__ import annotations

import io
import textwrap

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402

DISTILLED = {"train_student": "fine-tune loss: alpha*hard + (1-alpha)*T^2*soft (distillation)",
             "qat": "loss: alpha*hard + (1-alpha)*T^2*soft (distillation)"}


def figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def plot_dataset(axis, data_report: dict) -> None:
    classes = list(data_report["class_frequency"])
    splits = list(data_report["splits"])
    width = 0.8 / len(splits)
    for offset, split in enumerate(splits):
        counts = [data_report["class_frequency"][name][split] for name in classes]
        positions = [i + (offset - (len(splits) - 1) / 2) * width for i in range(len(classes))]
        axis.bar(
            positions,
            counts,
            width,
            label=f"{split} ({data_report['splits'][split]['images']} images)",
        )
    axis.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    axis.set_ylabel("images with the label")
    axis.set_title("Dataset: label frequency per split")
    axis.legend(fontsize=8)


MARKED_POINTS = 30  # a curve of at most this many epochs shows each one: one epoch is one point


def _marker(curve: dict) -> str | None:
    return "o" if len(curve["step"]) <= MARKED_POINTS else None


def plot_training(axis, stage: str, curves: dict, phases: dict) -> None:
    for key, style in (("train/loss", "-"), ("eval/loss", "--")):
        if key in curves:
            axis.plot(curves[key]["step"], curves[key]["value"], style, marker=_marker(curves[key]),
                      markersize=4, label=key.replace("eval", "val"))
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    if "eval/f1_macro" in curves:
        f1_axis = axis.twinx()
        f1_axis.plot(curves["eval/f1_macro"]["step"], curves["eval/f1_macro"]["value"], ":",
                     marker=_marker(curves["eval/f1_macro"]), markersize=4,
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


def plot_pr(axis, curves: dict, per_class: list[dict]) -> None:
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


def plot_f1_threshold(axis, table: dict, recommendation: dict) -> None:
    axis.plot(table["threshold"], table["f1_macro"])
    axis.axvline(recommendation["global_threshold"], color="tab:red", linestyle="--",
                 label=f"global {recommendation['global_threshold']:.2f} "
                       f"(F1 {recommendation['val_f1_macro_global']:.3f})")
    axis.set_xlabel("threshold (same for every class)")
    axis.set_ylabel("val macro-F1 (INT8)")
    axis.set_ylim(0, 1.02)
    axis.set_title(f"F1 vs threshold; adopted: {recommendation['adopted']}")
    axis.legend(fontsize=8)


def plot_fidelity(axis, export: dict) -> None:
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


def metrics_rows(evaluation: dict) -> list[list[str]]:
    rows = [[entry["class"], f"{entry['threshold']:.2f}", f"{entry['precision']:.3f}",
             f"{entry['recall']:.3f}", f"{entry['f1']:.3f}", str(entry["support"])]
            for entry in evaluation["per_class"]]
    rows.append(["macro", "", f"{evaluation['precision_macro']:.3f}",
                 f"{evaluation['recall_macro']:.3f}", f"{evaluation['f1_macro']:.3f}", ""])
    rows.append(["micro-F1", "", "", "", f"{evaluation['f1_micro']:.3f}", ""])
    return rows


METRIC_COLUMNS = ["class", "threshold", "precision", "recall", "F1", "support"]


def plot_table(axis, header: list[str], rows: list[list], title: str, fontsize: int = 8) -> None:
    axis.axis("off")
    table = axis.table(cellText=[[str(cell) for cell in row] for row in rows],
                       colLabels=[textwrap.fill(name, 14) for name in header], loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    table.scale(1, 1.3)
    axis.set_title(title)


def plot_metrics_table(axis, evaluation: dict) -> None:
    plot_table(axis, METRIC_COLUMNS, metrics_rows(evaluation),
               f"Test, INT8, adopted thresholds ({evaluation['images']} images)")


def panel_png(draw, *args, size=(6.4, 4.0)) -> bytes:
    """One chart in a figure of its own: ``draw(axis, *args)``."""
    figure, axis = plt.subplots(figsize=size)
    draw(axis, *args)
    return figure_png(figure)


GALLERY_COLUMNS = 6


def _caption(entry: dict) -> str:
    lines = [entry["image"][-28:]]
    lines += [f"FP {e['class']} {e['score']:.3f} >= {e['threshold']:.2f}"
              for e in entry["false_positives"]]
    lines += [f"FN {e['class']} {e['score']:.3f} < {e['threshold']:.2f}"
              for e in entry["false_negatives"]]
    return "\n".join(lines)


def gallery_png(thumbnails: list, entries: list[dict]) -> bytes:
    """The wrong test images as the model saw them (letterboxed), each with its false positives
    (predicted, score at or above the threshold) and false negatives (missed, score below)."""
    rows = -(-len(entries) // GALLERY_COLUMNS)
    figure, axes = plt.subplots(rows, GALLERY_COLUMNS, figsize=(2.4 * GALLERY_COLUMNS, 3.0 * rows),
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, pixels, entry in zip(axes.flat, thumbnails, entries):
        axis.imshow(pixels)
        axis.set_title(_caption(entry), fontsize=7, loc="left",
                       color="tab:red" if entry["false_positives"] else "tab:blue")
    figure.tight_layout()
    return figure_png(figure)
