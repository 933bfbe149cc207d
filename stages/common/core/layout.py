"""Where the stages read and write: the one list of the pipeline's paths.

Relative to the working folder: the repository root under `dvc repro`, ``--work_dir`` under
the seed's CLI. Stage scripts take their defaults from here and nothing else in the code spells
these paths. dvc.yaml declares the same paths as deps and outs, since DVC must see them;
tests/core/test_layout.py checks that every path dvc.yaml names is one of these.
"""
from pathlib import Path

DEMO_DATA = Path("data/demo")
PREPARED = Path("data/prepared")
SHARDS = Path("data/shards")
UNLABELLED = Path("data/unlabelled")  # the images without labels, checked and sharded

PRETRAINED = Path("models/pretrained")
TEACHER = Path("models/teacher")
STUDENT = Path("models/student")
QAT = Path("models/qat")
CHECKPOINTS = Path("models/checkpoints")  # one folder per training stage, while it runs
EXPORT_MODEL = Path("models/export/model_qat_int8.tflite")
PTQ_MODEL = Path("models/ptq/model_ptq_int8.tflite")

METRICS = Path("metrics")
DATA_REPORT = METRICS / "data_report.json"
TEACHER_METRICS = METRICS / "teacher.json"
STUDENT_METRICS = METRICS / "student.json"
QAT_METRICS = METRICS / "qat.json"
EXPORT_REPORT = METRICS / "export.json"
THRESHOLDS = METRICS / "thresholds.json"
F1_CURVE = METRICS / "plots/f1_vs_threshold.csv"
EVALUATION = METRICS / "evaluation.json"
TEST_ERRORS = METRICS / "test_errors.json"  # the test images the INT8 model gets wrong
PR_CURVES = METRICS / "plots/pr"
QUANTIZATION = METRICS / "quantization.json"
BENCHMARK = METRICS / "benchmark.json"  # benchmarks, outside the pipeline
MEMORY = METRICS / "memory.json"

LIVE = Path("dvclive")  # one folder of training curves per training stage
REPORTS = Path("reports")


def live_curves(stage: str) -> Path:
    return LIVE / stage


def checkpoints(stage: str) -> Path:
    return CHECKPOINTS / stage
