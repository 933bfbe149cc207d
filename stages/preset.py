"""Print a preset (a partial params file, such as presets/fast.yaml) as `dvc exp run` flags.

    dvc exp run $(python -m stages.preset presets/fast.yaml) -S data.dir=data/hard_s1

Not a pipeline stage. The preset is checked first, laid over --params as the CLI's --config is:
a misspelt key or a wrong value is reported with its file and line, and nothing is printed.
"""
from stages.common.core.command_line import stage_parser
from stages.common.core.errors import run_main
from stages.common.core.params import preset_flags


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("preset", help="a YAML file of params.yaml's keys, any subset of them")
    args = parser.parse_args()
    print(" ".join(preset_flags(args.params, args.preset)))


if __name__ == "__main__":
    run_main(main)
