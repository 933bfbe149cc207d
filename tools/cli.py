"""The seed's command line, for people who follow the seed description:

    python -m tools.cli train --data_dir D --out_dir O --config C

C is a YAML file in the seed's schema ("Configuración": seed, num_classes, teacher, student,
distillation, qat, augmentation, threshold_search); keys it leaves out keep params.yaml's values.
It runs the same stage scripts as `dvc repro`, in order, and leaves the five outputs (and the
MediaPipe model) in O (the visual report goes to <work_dir>/reports/).
Intermediate files (prepared data, models, metrics) go under --work_dir, by default the
repository root, where the DVC pipeline keeps them too. DVC is not involved: nothing is cached,
every stage runs. For caching, experiments and diffs, use `dvc repro` / `dvc exp run`.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser, stage_process_env
from stages.common.core.errors import UserError, run_main
from stages.common.core.params import load_params_with_overrides
from stages.common.core.params_schema import Params
from stages.common.core.yaml_files import read_yaml, write_yaml
from stages.common.deployment.deliverables import check_output_folder

REPO = Path(__file__).resolve().parents[1]
# Stages that only `dvc repro` runs: the CLI is given its dataset, it does not make the demo one.
NOT_IN_CLI = ("demo_data",)


def pipeline_stages(dvc_file: Path = REPO / "dvc.yaml") -> list[tuple[str, list[str], bool]]:
    """(name, command words, whether it reads params) of each stage, in dvc.yaml's order, which
    is the pipeline's order."""
    stages, _ = read_yaml(dvc_file)
    ordered = []
    for name, stage in stages["stages"].items():
        if name in NOT_IN_CLI:
            continue
        words = shlex.split(stage["cmd"])
        if words[:2] != ["python", "-m"]:
            raise UserError(f"{dvc_file}: stage {name} does not run `python -m stages.<name>`")
        ordered.append((name, [sys.executable, *words[1:]], "params" in stage))
    return ordered


def needs_imagenet_lite(params: Params) -> bool:
    """Whether the student or the teacher starts from converted ImageNet Lite weights."""
    return params.student.weights == "imagenet" or (
        params.teacher.architecture == "efficientnet_lite2"
        and params.teacher.weights == "imagenet")


def train(data_dir: Path, out_dir: Path, config: Path | None, work_dir: Path) -> int:
    params = load_params_with_overrides(REPO / "params.yaml", config or REPO / "params.yaml")
    check_output_folder(out_dir)  # before hours of training, not at the last stage
    params["data"]["dir"] = str(data_dir.resolve())
    params["output"]["dir"] = str(out_dir.resolve())
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cli_params_") as folder:
        params_file = Path(folder) / "params.yaml"
        write_yaml(params_file, params)
        stages = pipeline_stages()
        env = stage_process_env()  # the stages run in work_dir, and import this checkout's code
        for index, (stage, command, reads_params) in enumerate(stages, start=1):
            if stage == "import_imagenet_weights" and not needs_imagenet_lite(
                    Params.from_dict(params)):
                continue
            print(f"== [{index}/{len(stages)}] {stage}", flush=True)
            if reads_params:  # the merged params, not the checkout's params.yaml
                command = [*command, "--params", str(params_file)]
            result = subprocess.run(command, cwd=work_dir, env=env)
            if result.returncode != 0:
                print(f"stage {stage} failed (exit status {result.returncode})", file=sys.stderr)
                return result.returncode
    print(
        f"done: the five outputs and the MediaPipe model are in {out_dir}, "
        f"the report in {work_dir / 'reports'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__, params=False)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="run the whole pipeline")
    run.add_argument("--data_dir", required=True, type=Path,
                     help="dataset folder (images/, train.txt, val.txt, test.txt)")
    run.add_argument(
        "--out_dir",
        required=True,
        type=Path,
        help="where the five outputs (and the MediaPipe model) go",
    )
    run.add_argument("--config", type=Path, help="seed-style YAML config (default: params.yaml)")
    run.add_argument("--work_dir", type=Path, default=REPO,
                     help="where intermediate data, models and metrics go "
                          "(default: the repository)")
    args = parser.parse_args(argv)
    if not (args.data_dir / "images").is_dir():
        raise UserError(f"{args.data_dir}: no images/ folder; --data_dir must be a dataset folder "
                        "(for the demo data: python -m stages.make_demo_data, then --data_dir "
                        f"{layout.DEMO_DATA})")
    return train(args.data_dir, args.out_dir, args.config, args.work_dir)


if __name__ == "__main__":
    run_main(main)
