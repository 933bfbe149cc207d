"""The GPU check: the demo pipeline with mixed precision on an NVIDIA GPU, and a table of what it
cost (run by tests/helpers/gpu_check.sh after installing the requirements; see docs/scale_out.md).

    python tests/helpers/gpu_check.py [--work_dir DIR] [--out FILE.json]

Runs the committed CPU run's settings (dvc.lock: the README's demo command) plus
``train.mixed_precision: true`` through the seed's command line (tools/cli.py) in a work
folder of its own (the repository's files are not touched), polls nvidia-smi every half second,
then prints per training stage: epochs, seconds per epoch, training images per second and peak
GPU memory; and the INT8 test results.

INT8 inference runs on the CPU (LiteRT), never on the GPU. So the check also evaluates the CPU
run's own INT8 model (models/export of the repository, when `dvc checkout` or `dvc repro` put it
there) on this machine, on the same regenerated demo test images: its results must equal the
committed metrics/evaluation.json to the last digit. The GPU-trained model's own test macro-F1
is shown beside the CPU run's; it is not expected to be equal (float16 training).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAINING_STAGES = ("train_teacher", "train_student", "qat")


def committed_run_params(path: Path) -> dict:
    """params.yaml with the values the committed CPU run used (dvc.lock records every stage's
    params: the README's demo command), plus float16 training; written to ``path``."""
    from stages.common.core.params import load_params_with_overrides
    from stages.common.core.yaml_files import read_yaml, write_yaml

    overlay: dict = {}
    for stage in read_yaml(REPO / "dvc.lock")[0]["stages"].values():
        for key, value in (stage.get("params") or {}).get("params.yaml", {}).items():
            *sections, leaf = key.split(".")
            node = overlay
            for section in sections:
                node = node.setdefault(section, {})
            if isinstance(value, dict) and isinstance(node.get(leaf), dict):
                node[leaf].update(value)
            else:
                node[leaf] = value
    for paths_of_this_repository in ("data", "output"):  # the CLI sets them
        overlay.pop(paths_of_this_repository, None)
    overlay.setdefault("train", {})["mixed_precision"] = True
    write_yaml(path, overlay)
    params = load_params_with_overrides(REPO / "params.yaml", path)
    write_yaml(path, params)
    return params


class GpuMemory:
    """Peak used GPU memory (MiB, all GPUs summed) per stage, from nvidia-smi every 0.5 s."""

    def __init__(self):
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            result = subprocess.run(["nvidia-smi", "--query-gpu=memory.used",
                                     "--format=csv,noheader,nounits"],
                                    capture_output=True, text=True)
            if result.returncode == 0:
                used = sum(int(value) for value in result.stdout.split() if value.isdigit())
                self.samples.append((time.monotonic(), used))
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> int | None:
        inside = [used for at, used in self.samples if start <= at <= end]
        return max(inside) if inside else None


def run_pipeline(work: Path, config: Path) -> dict[str, tuple[float, float]]:
    """Runs the pipeline with the params file ``config``, echoing its output; returns each
    stage's (start, end) time."""
    subprocess.run([sys.executable, "-m", "stages.make_demo_data",
                    "--params", str(config), "--out", str(work / "data" / "demo")],
                   cwd=work, check=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "train", "--data_dir",
         str(work / "data" / "demo"), "--out_dir", str(work / "outputs"), "--config", str(config),
         "--work_dir", str(work)], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    windows: dict[str, tuple[float, float]] = {}
    current = None
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith("== ["):  # "== [4/13] train_teacher"
            now = time.monotonic()
            if current:
                windows[current] = (windows[current][0], now)
            current = line.split()[-1]
            windows[current] = (now, now)
    if current:
        windows[current] = (windows[current][0], time.monotonic())
    if process.wait() != 0:
        raise SystemExit(f"gpu_check: the pipeline failed (exit status {process.returncode})")
    return windows


def cpu_model_here(work: Path) -> dict:
    """The CPU run's INT8 model evaluated on this machine against its committed results."""
    model = REPO / "models" / "export" / "model_qat_int8.tflite"
    if not model.is_file():
        return {"checked": False, "why": f"{model} absent: run `dvc checkout` (or the demo) first"}
    out = work / "cpu_model_evaluation.json"
    subprocess.run([sys.executable, "-m", "stages.evaluate", "--model", str(model),
                    "--thresholds", str(REPO / "metrics" / "thresholds.json"), "--out", str(out),
                    "--curves", str(work / "cpu_model_curves")], cwd=work, check=True)
    here = json.loads(out.read_text())
    committed = json.loads((REPO / "metrics" / "evaluation.json").read_text())
    keys = ("f1_macro", "f1_micro", "precision_macro", "recall_macro", "per_class",
            "at_threshold_0.5")
    return {"checked": True, "equal": all(here[key] == committed[key] for key in keys),
            "f1_macro_here": here["f1_macro"], "f1_macro_committed": committed["f1_macro"]}


def table(work: Path, windows: dict, memory: GpuMemory, train_images: int) -> list[dict]:
    rows = []
    for stage in TRAINING_STAGES:
        name = {"train_teacher": "teacher", "train_student": "student"}.get(stage, stage)
        metrics = json.loads((work / "metrics" / f"{name}.json").read_text())
        epochs = sum(phase["epochs_run"] for phase in metrics["phases"].values())
        seconds = sum(phase["wall_time_s"] for phase in metrics["phases"].values())
        rows.append({"stage": stage, "epochs": epochs,
                     "s_per_epoch": round(seconds / epochs, 2) if epochs else None,
                     "train_images_per_s": round(train_images * epochs / seconds, 1)
                     if seconds else None,
                     "peak_gpu_mib": memory.peak(*windows[stage]) if stage in windows else None,
                     "stage_wall_s": round(windows[stage][1] - windows[stage][0], 1)
                     if stage in windows else None})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, help="default: a new temporary folder")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    if shutil.which("nvidia-smi") is None:
        raise SystemExit("gpu_check: nvidia-smi not found: this check is for an NVIDIA GPU machine")
    import stages  # noqa: F401  (Keras 2 before TensorFlow)
    # isort: split
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise SystemExit("gpu_check: TensorFlow sees no GPU (CUDA libraries missing? "
                         "tests/helpers/gpu_check.sh installs tensorflow[and-cuda])")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    config = work / "gpu_check_params.yaml"
    params = committed_run_params(config)
    started = time.monotonic()
    with GpuMemory() as memory:
        windows = run_pipeline(work, config)
    train_images = params["demo_data"]["train_images"]
    results = {"gpus": [gpu.name for gpu in gpus], "wall_s": round(time.monotonic() - started, 1),
               "stages": table(work, windows, memory, train_images),
               "gpu_run_int8_test_f1_macro": json.loads(
                   (work / "metrics" / "evaluation.json").read_text())["f1_macro"],
               "cpu_run_int8_test_f1_macro": json.loads(
                   (REPO / "metrics" / "evaluation.json").read_text())["f1_macro"],
               "cpu_run_model_here": cpu_model_here(work)}
    print("\n| stage | epochs | s/epoch | train img/s | peak GPU MiB | stage wall s |")
    print("|---|---|---|---|---|---|")
    for row in results["stages"]:
        print(f"| {row['stage']} | {row['epochs']} | {row['s_per_epoch']} | "
              f"{row['train_images_per_s']} | {row['peak_gpu_mib']} | {row['stage_wall_s']} |")
    check = results["cpu_run_model_here"]
    print(f"\nwhole pipeline: {results['wall_s']} s; INT8 test macro-F1: GPU-trained model "
          f"{results['gpu_run_int8_test_f1_macro']:.4f}, CPU run (committed) "
          f"{results['cpu_run_int8_test_f1_macro']:.4f}")
    print(
        "the CPU run's INT8 model evaluated here equals its committed results: "
        + (
            ("yes" if check["equal"] else "NO")
            if check["checked"]
            else f"not checked ({check['why']})"
        )
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if not check["checked"] or check["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
