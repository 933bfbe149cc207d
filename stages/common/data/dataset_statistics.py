"""Statistics of a prepared dataset: what prepare writes to metrics/data_report.json and prints."""
from __future__ import annotations

from collections import Counter

from stages.common.data.dataset import SPLITS, PreparedDataset


def _rate(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 6) if denominator else 0.0


def dataset_report(dataset: PreparedDataset) -> dict:
    """Statistics for metrics/data_report.json (numbers, so ``dvc metrics`` can diff them)."""
    report: dict = {"num_classes": len(dataset.classes), "splits": {}, "class_frequency": {}}
    all_records = [r for rs in dataset.splits.values() for r in rs]
    for split, records in dataset.splits.items():
        counts = [len(r.labels) for r in records]
        report["splits"][split] = {
            "images": len(records),
            "labels_per_image_mean": _rate(sum(counts), len(records)),
            "labels_per_image_max": max(counts, default=0),
            "no_label_rate": _rate(sum(c == 0 for c in counts), len(records)),
            "multi_label_rate": _rate(sum(c > 1 for c in counts), len(records)),
        }
    for name in dataset.classes:
        report["class_frequency"][name] = {
            split: sum(name in r.labels for r in records)
            for split, records in dataset.splits.items()
        }
    if all_records:
        report["image_size"] = {
            "height_min": min(r.height for r in all_records),
            "height_max": max(r.height for r in all_records),
            "width_min": min(r.width for r in all_records),
            "width_max": max(r.width for r in all_records),
            "aspect_ratio_min": round(min(r.width / r.height for r in all_records), 4),
            "aspect_ratio_max": round(max(r.width / r.height for r in all_records), 4),
        }
    kinds = Counter(d.kind for d in dataset.defects)
    report["defects"] = {
        "skipped_lines": len(dataset.defects),
        "by_reason": dict(sorted(kinds.items())),
    }
    report["classes_without_positive"] = {
        split: [c for c in dataset.classes if report["class_frequency"][c][split] == 0]
        for split in ("val", "test")
    }
    report["fingerprint"] = dataset.fingerprint()
    return report


def format_summary(dataset: PreparedDataset, report: dict) -> str:
    """A readable table of the report for the terminal."""
    lines = [f"dataset {dataset.dataset_dir}: {len(dataset.classes)} classes, "
             f"fingerprint {report['fingerprint'][:12]}"]
    lines.append(f"{'split':<8}{'images':>8}{'labels/img':>12}{'no-label':>10}{'multi':>8}")
    for split, stats in report["splits"].items():
        lines.append(f"{split:<8}{stats['images']:>8}{stats['labels_per_image_mean']:>12.2f}"
                     f"{stats['no_label_rate']:>10.1%}{stats['multi_label_rate']:>8.1%}")
    width = max([len(c) for c in dataset.classes] + [5])
    lines.append(f"{'class':<{width}}" + "".join(f"{s:>8}" for s in SPLITS))
    for name, freq in report["class_frequency"].items():
        lines.append(f"{name:<{width}}" + "".join(f"{freq[s]:>8}" for s in SPLITS))
    size = report.get("image_size")
    if size:
        lines.append(f"image height {size['height_min']}..{size['height_max']}, width "
                     f"{size['width_min']}..{size['width_max']}, aspect (w/h) "
                     f"{size['aspect_ratio_min']}..{size['aspect_ratio_max']}")
    for split, missing in report["classes_without_positive"].items():
        if missing:
            lines.append(f"warning: no positive in {split} for: {', '.join(missing)}")
    if dataset.defects:
        lines.append(f"skipped {len(dataset.defects)} defective line(s) (prepare.on_defect: skip):")
        lines += [f"  {d}" for d in dataset.defects]
    return "\n".join(lines)
