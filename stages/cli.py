"""The seed's command line, for people who follow the seed description:

    python -m stages.cli train --data_dir D --out_dir O --config C

C is a YAML file in the seed's schema ("Configuración": seed, num_classes, teacher, student,
distillation, qat, augmentation, threshold_search); keys it leaves out keep params.yaml's values.
It runs the same stage scripts as `dvc repro`, in order, and leaves the five outputs in O
(the visual report goes to <work_dir>/reports/).
Intermediate files (prepared data, models, metrics) go under --work_dir, by default the
repository root, where the DVC pipeline keeps them too. DVC is not involved: nothing is cached,
every stage runs. For caching, experiments and diffs, use `dvc repro` / `dvc exp run`.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.common.arguments import stage_parser  # noqa: E402
from stages.common.errors import UserError, run_main  # noqa: E402
from stages.common.package import check_output_folder  # noqa: E402
from stages.common.params import load_params_with_overrides, write_yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# (script, whether it takes --params); the order of dvc.yaml without demo_data
STAGES = (("prepare", True), ("shards", True), ("import_imagenet_weights", False), ("train_teacher", True),
          ("train_student", True), ("qat", True), ("export", True), ("thresholds", True),
          ("evaluate", False), ("ptq_baseline", True),
          ("compare_quantization", True), ("package", True), ("report", True))


def needs_imagenet_lite(params: dict) -> bool:
    """Whether the student or the teacher starts from converted ImageNet Lite weights."""
    return params["student"]["weights"] == "imagenet" or (
        params["teacher"]["architecture"] == "efficientnet_lite2"
        and params["teacher"]["weights"] == "imagenet")


def train(data_dir: Path, out_dir: Path, config: Path | None, work_dir: Path) -> int:
    params = load_params_with_overrides(REPO / "params.yaml", config or REPO / "params.yaml")
    check_output_folder(out_dir)  # before hours of training, not at the last stage
    params["data"]["dir"] = str(data_dir.resolve())
    params["output"]["dir"] = str(out_dir.resolve())
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cli_params_") as folder:
        params_file = Path(folder) / "params.yaml"
        write_yaml(params_file, params)
        for index, (stage, takes_params) in enumerate(STAGES, start=1):
            if stage == "import_imagenet_weights" and not needs_imagenet_lite(params):
                continue
            print(f"== [{index}/{len(STAGES)}] {stage}", flush=True)
            command = [sys.executable, str(REPO / "stages" / f"{stage}.py")]
            if takes_params:
                command += ["--params", str(params_file)]
            result = subprocess.run(command, cwd=work_dir)
            if result.returncode != 0:
                print(f"stage {stage} failed (exit status {result.returncode})", file=sys.stderr)
                return result.returncode
    print(f"done: the five outputs are in {out_dir}, the report in {work_dir / 'reports'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__, params=False)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="run the whole pipeline")
    run.add_argument("--data_dir", required=True, type=Path,
                     help="dataset folder (images/, train.txt, val.txt, test.txt)")
    run.add_argument("--out_dir", required=True, type=Path, help="where the five outputs go")
    run.add_argument("--config", type=Path, help="seed-style YAML config (default: params.yaml)")
    run.add_argument("--work_dir", type=Path, default=REPO,
                     help="where intermediate data, models and metrics go (default: the repository)")
    args = parser.parse_args(argv)
    if not (args.data_dir / "images").is_dir():
        raise UserError(f"{args.data_dir}: no images/ folder; --data_dir must be a dataset folder "
                        "(for the demo data: python stages/make_demo_data.py, then --data_dir data/demo)")
    return train(args.data_dir, args.out_dir, args.config, args.work_dir)


if __name__ == "__main__":
    run_main(main)
