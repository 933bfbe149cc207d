"""DVC habits on the whole pipeline, in a throw-away git repository with tiny settings:
a second `dvc repro` skips every stage, `dvc exp run -S ...` runs experiments, `dvc exp show`
lists them with params and metrics, and `dvc metrics diff`, `dvc params diff` and
`dvc plots diff` compare them."""
import json
import shutil
import time

import pytest
import yaml
from helpers.git_dvc import REPO, dvc, run

from stages.common.core.params import read_params
from stages.common.core.yaml_files import read_yaml, write_yaml

TINY = {
    "demo_data": {"train_images": 16, "val_images": 8, "test_images": 8},
    "teacher": {
        "architecture": "efficientnet_b0",
        "weights": None,
        "input_size": 64,
        "batch_size": 8,
        "epochs_head": 1,
        "epochs_finetune": 1,
    },
    "student": {
        "weights": None,
        "input_size": 48,
        "batch_size": 8,
        "epochs_head": 1,
        "epochs_finetune": 1,
    },
    "qat": {"epochs": 2, "lr": 1e-4},
    "export": {"representative_samples": 8},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The repository's pipeline with tiny params, reproduced once and committed."""
    root = tmp_path_factory.mktemp("experiments") / "project"
    shutil.copytree(REPO / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    params = read_yaml(REPO / "params.yaml")[0]
    for section, values in TINY.items():
        params[section].update(values)
    params["num_classes"] = 5  # the demo's classes; an experiment sets it back to null
    write_yaml(root / "params.yaml", params)
    run("git", "init", "-q", cwd=root)
    dvc("init", "-q", cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "pipeline", cwd=root)  # dvclive needs a commit to exist
    dvc("repro", "-q", cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "baseline", cwd=root)
    return root


def _exp_show(root) -> dict[str, dict]:
    """Experiment name -> {"params": {...}, "metrics": {...}} from `dvc exp show --json`."""
    rows = {}
    for commit in json.loads(dvc("exp", "show", "--json", cwd=root)):
        for experiment in commit.get("experiments") or []:
            for revision in experiment["revs"]:
                data = revision["data"]
                rows[revision["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": {path: value["data"] for path, value in data["metrics"].items()},
                }
    return rows


def _check_values_read_back(project):
    """DVC writes `-S qat.lr=1e-5` back as `lr: 1e-05`, a string for a YAML 1.1 reader: the
    params, DVC's lock and the stage's own record must all hold the number."""
    text = (project / "params.yaml").read_text()
    assert "  lr: 1e-05\n" in text  # DVC's spelling ...
    assert yaml.safe_load(text)["qat"]["lr"] == "1e-05"  # ... which PyYAML reads as a string
    params = read_params(project / "params.yaml")
    assert params["qat"]["lr"] == 1e-05 and params["qat"]["epochs"] == 1
    assert params["train"]["mixed_precision"] is False
    assert params["num_classes"] is None and params["output"]["dir"] == "outputs/override"
    locked = read_yaml(project / "dvc.lock")[0]["stages"]
    assert locked["qat"]["params"]["params.yaml"]["qat"] == {"epochs": 1, "lr": 1e-05}
    assert locked["prepare"]["params"]["params.yaml"]["num_classes"] is None
    qat = json.loads((project / "metrics" / "qat.json").read_text())["phases"]["qat"]
    assert qat["learning_rate"] == 1e-05 and qat["epochs_run"] == 1  # what the stage trained with
    assert (project / "outputs" / "override" / "inference_config.json").is_file()


def _check_the_fallback_reaches_qat(project):
    """With if_teacher_not_better: labels, QAT distils with the alpha the student ended with:
    1 if the student fell back to the labels at any epoch, else the params' 0.5."""
    check = json.loads((project / "metrics" / "student.json").read_text())["teacher_check"]
    assert check["if_teacher_not_better"] == "labels"
    fell_back = check["labels_only_from_finetune_epoch"] is not None
    if not check["teacher_is_better"] or not check["teacher_ahead_of_finetuned_student"]:
        assert fell_back  # (an epoch past the one kept may have reached the teacher too)
    qat = json.loads((project / "metrics" / "qat.json").read_text())
    assert qat["distillation_alpha"] == (1.0 if fell_back else 0.5)
    assert "distillation_alpha_at_end" not in json.loads(
        (project / "models" / "qat" / "model.json").read_text())


def test_second_repro_skips_every_stage(project):
    started = time.monotonic()
    output = dvc("repro", cwd=project)
    elapsed = time.monotonic() - started
    assert "Data and pipelines are up to date" in output or "didn't change" in output
    assert "Running stage" not in output
    assert elapsed < 30  # measured about 1 s on the CI machine; generous for a loaded runner


def test_experiments_are_listed_and_compared(project):
    # Besides what it compares, this experiment sets each kind of value that DVC writes back
    # into params.yaml: a float in exponent form, an int, a bool, null and a string.
    dvc("exp", "run", "-n", "alpha05", "-S", "qat.epochs=1", "-S", "distillation.alpha=0.5",
        "-S", "qat.lr=1e-5", "-S", "train.mixed_precision=false", "-S", "num_classes=null",
        "-S", "output.dir=outputs/override", "-S", "distillation.if_teacher_not_better=labels",
        cwd=project)
    _check_values_read_back(project)
    _check_the_fallback_reaches_qat(project)
    # An experiment in the workspace leaves its params and results there; back to the baseline
    # first, so the next one differs from the baseline only by its own -S.
    run("git", "reset", "-q", "--hard", cwd=project)
    dvc("checkout", "-q", "--force", cwd=project)
    dvc("exp", "run", "-n", "coarse-grid", "-S", "threshold_search.grid_step=0.05", cwd=project)

    shown = _exp_show(project)
    assert {"alpha05", "coarse-grid"} <= set(shown)
    assert shown["alpha05"]["params"]["distillation"]["alpha"] == 0.5
    assert shown["alpha05"]["params"]["qat"]["epochs"] == 1
    assert shown["alpha05"]["params"]["qat"]["lr"] == 1e-05
    assert shown["alpha05"]["params"]["num_classes"] is None
    assert shown["coarse-grid"]["params"]["threshold_search"]["grid_step"] == 0.05
    for name in ("alpha05", "coarse-grid"):
        metrics = shown[name]["metrics"]
        assert 0.0 <= metrics["metrics/evaluation.json"]["f1_macro"] <= 1.0
        assert "val_f1_macro" in metrics["metrics/student.json"]

    qat_epochs = json.loads(dvc("metrics", "diff", "alpha05", "coarse-grid", "--json",
                                cwd=project))["metrics/qat.json"]
    assert qat_epochs["phases.qat.epochs_run"] == {"old": 1, "new": 2, "diff": 1}
    params = json.loads(dvc("params", "diff", "alpha05", "coarse-grid", "--json",
                            cwd=project))["params.yaml"]
    assert {key: params["distillation.alpha"][key] for key in ("old", "new")} == {
        "old": 0.5,
        "new": 0.7,
    }
    assert {key: params["threshold_search.grid_step"][key] for key in ("old", "new")} == \
        {"old": 0.01, "new": 0.05}

    plots = json.loads(dvc("plots", "diff", "alpha05", "coarse-grid", "--json", "--split",
                           cwd=project))["data"]

    def points_per_revision(path):
        (plot,) = plots[path]
        assert plot["revisions"] == ["alpha05", "coarse-grid"]
        points = plot["anchor_definitions"]["<DVC_METRIC_DATA>"]
        return {rev: sum(point["rev"] == rev for point in points) for rev in plot["revisions"]}

    # training curves: one QAT epoch against two
    assert points_per_revision("dvclive/qat/plots/metrics/eval/f1_macro.tsv") == \
        {"alpha05": 1, "coarse-grid": 2}
    assert all(points_per_revision("dvclive/train_student/plots/metrics/train/loss.tsv").values())
    pr_tables = [path for path in plots if path.startswith("metrics/plots/pr/")]
    assert len(pr_tables) == 5 and all(
        all(points_per_revision(path).values()) for path in pr_tables
    )
    # F1 against threshold: the grid 0.05..0.95 in steps of 0.01, then of 0.05
    assert points_per_revision("metrics/plots/f1_vs_threshold.csv") == {
        "alpha05": 91,
        "coarse-grid": 19,
    }


def test_queued_experiments_run_side_by_side(project):
    """`dvc exp run --queue` twice, then `dvc queue start -j 2`: each experiment runs in its own
    temporary copy of the repository, so the two share no scratch path, and each ends with the
    metrics of its own params."""
    steps = {"queued-grid-002": 0.02, "queued-grid-005": 0.05}
    for name, step in steps.items():
        dvc("exp", "run", "--queue", "-q", "-n", name, "-S", f"threshold_search.grid_step={step}",
            cwd=project)
    try:
        dvc("queue", "start", "-j", "2", cwd=project)
        deadline = time.monotonic() + 900
        while True:
            status = dvc("queue", "status", cwd=project)
            rows = {line.split()[1]: line.split()[-1] for line in status.splitlines()
                    if line.split()[1:2] and line.split()[1] in steps}
            if len(rows) == 2 and not {"Queued", "Running"} & set(rows.values()):
                break
            assert time.monotonic() < deadline, status
            time.sleep(3)
    finally:
        dvc("queue", "stop", "--kill", cwd=project)
    assert rows == {name: "Success" for name in steps}, status
    shown = _exp_show(project)
    for name, step in steps.items():
        thresholds = shown[name]["metrics"]["metrics/thresholds.json"]
        assert thresholds["grid"]["step"] == step
        # the threshold it chose lies on its own grid, which starts at grid_min 0.05
        assert round((thresholds["global_threshold"] - 0.05) / step, 6).is_integer()
        assert 0.0 <= shown[name]["metrics"]["metrics/evaluation.json"]["f1_macro"] <= 1.0
