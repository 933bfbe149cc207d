"""The seed's CLI: python -m tools.cli train --data_dir D --out_dir O --config C."""
import json
import subprocess
import sys
from pathlib import Path

from stages.common.data.demo_data import write_demo_dataset

REPO = Path(__file__).resolve().parents[2]

SEED_STYLE_CONFIG = """\
seed: 1337
num_classes: 5
teacher:
  architecture: efficientnet_b0
  weights: null
  input_size: 64
  batch_size: 8
  epochs_head: 1
  epochs_finetune: 1
student:
  weights: null
  input_size: 48
  batch_size: 8
  epochs_head: 1
  epochs_finetune: 1
distillation:
  alpha: 0.7
  temperature: 2.0
qat:
  epochs: 1
  lr: 1.0e-5
export:
  representative_samples: 8
threshold_search:
  grid_min: 0.05
  grid_max: 0.95
  grid_step: 0.01
  objective: f1_macro
"""


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tools.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True)


def test_cli_trains_and_leaves_the_five_outputs_and_the_metadata_model(tmp_path):
    write_demo_dataset(tmp_path / "data", {"train": 16, "val": 8, "test": 8}, seed=2)
    config = tmp_path / "config.yaml"
    config.write_text(SEED_STYLE_CONFIG)
    result = _cli("train", "--data_dir", tmp_path / "data", "--out_dir", tmp_path / "out",
                  "--config", config, "--work_dir", tmp_path / "work", cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([
        "model_qat_int8.tflite", "labels.txt", "metrics.json", "threshold_recommendation.json",
        "inference_config.json", "model_qat_int8_metadata.tflite"])
    config_out = json.loads((tmp_path / "out" / "inference_config.json").read_text())
    assert config_out["input"]["height"] == 48
    assert (tmp_path / "work" / "metrics" / "teacher.json").exists()  # intermediates in work_dir
    quantization = json.loads((tmp_path / "work" / "metrics" / "quantization.json").read_text())
    assert set(quantization) >= {"float_student", "ptq_int8", "qat_int8"}
    assert quantization["ptq_export"]["input"]["scale"] == 1 / 128  # PTQ kept the phone's contract
    assert "[14/14] report" in result.stdout
    # neither model starts from ImageNet Lite weights: their import is skipped
    assert "import_imagenet_weights" not in result.stdout
    page = (tmp_path / "work" / "reports" / "report.html").read_text()
    for section in ("Summary", "Dataset", "Training", "Teacher check (val, before distillation)",
                    "Thresholds (val, INT8)", "Test metrics (INT8, adopted thresholds)",
                    "Quantisation: float student, PTQ and QAT (test)", "INT8 vs float fidelity"):
        assert f"<h2>{section}</h2>" in page
    # dataset, teacher, student, QAT, F1 vs threshold, PR curves, fidelity, and the error gallery
    # when a test image is wrong (the work folder's metrics/test_errors.json)
    errors = json.loads((tmp_path / "work" / "metrics" / "test_errors.json").read_text())
    assert page.count("data:image/png;base64,") == 7 + (errors["total"] > 0)
    assert ('alt="error gallery"' in page) == (errors["total"] > 0)
    assert (tmp_path / "work" / "reports" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"outputs (6 files) in {tmp_path / 'out'}" in result.stdout


def test_cli_reports_config_problems_with_file_and_line(tmp_path):
    write_demo_dataset(tmp_path / "data", {"train": 2, "val": 1, "test": 1}, seed=2)
    config = tmp_path / "config.yaml"
    config.write_text(SEED_STYLE_CONFIG.replace("  alpha: 0.7", "  alpha: 7"))
    line = SEED_STYLE_CONFIG.splitlines().index("  alpha: 0.7") + 1
    result = _cli("train", "--data_dir", tmp_path / "data", "--out_dir", tmp_path / "out",
                  "--config", config, "--work_dir", tmp_path / "work", cwd=REPO)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{config}:{line}: distillation.alpha must be" in result.stderr
    missing = _cli("train", "--data_dir", tmp_path / "nowhere", "--out_dir", tmp_path / "out",
                   cwd=REPO)
    assert missing.returncode == 2 and "no images/ folder" in missing.stderr


def _order_problems(dvc_file: Path) -> list[str]:
    """Stages the CLI would run before a stage whose outputs they read (it runs them in
    dvc.yaml's order, as listed by tools.cli.pipeline_stages)."""
    import yaml

    from tools.cli import pipeline_stages

    stages = yaml.safe_load(dvc_file.read_text())["stages"]

    def paths(stage, keys):
        return {Path(entry if isinstance(entry, str) else next(iter(entry)))
                for key in keys for entry in stages[stage].get(key, [])
                if "${" not in str(entry) and not str(entry).endswith(".py")}

    problems, written = [], {}
    for name, command, _ in pipeline_stages(dvc_file):
        if not (REPO / Path(*command[2].split("."))).with_suffix(".py").is_file():
            problems.append(f"{name}: no module {command[2]}")
        for needed in paths(name, ("deps",)):
            producers = [stage for stage in stages if stage != name and any(
                needed == out or out in needed.parents or needed in out.parents
                for out in paths(stage, ("outs", "metrics", "plots")))]
            late = [stage for stage in producers if stage not in written and stage != "demo_data"]
            problems += [f"{name} runs before {stage}, which writes its dep {needed}"
                         for stage in late]
        written[name] = True
    return problems


def test_cli_runs_dvc_yaml_stages_in_an_order_that_respects_their_deps(tmp_path):
    import yaml

    assert _order_problems(REPO / "dvc.yaml") == []
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    names = list(pipeline["stages"])
    names.insert(names.index("export"), names.pop(names.index("thresholds")))
    pipeline["stages"] = {name: pipeline["stages"][name] for name in names}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    assert _order_problems(tmp_path / "dvc.yaml") == [
        "thresholds runs before export, which writes its dep models/export"]
