"""Print a preset (a partial params file, such as presets/fast.yaml) as `dvc exp run` flags.

    FAST=$(python -m tools.preset presets/fast.yaml) && dvc exp run $FAST -S data.dir=data/hard_s1

Several presets are laid one over the other, in order (a later one's value wins):

    python -m tools.preset presets/distilled.yaml presets/unlabelled.yaml

Not a pipeline stage. The presets are checked first, laid over --params as the CLI's --config is:
a misspelt key or a wrong value is reported with its file and line, nothing is printed and the
exit status is 2 (hence the `&&`: `dvc exp run` with no flags would run the seed's schedule).
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core.command_line import stage_parser
from stages.common.core.errors import run_main
from stages.common.core.params import preset_flags


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("presets", nargs="+", metavar="preset",
                        help="a YAML file of params.yaml's keys, any subset of them; later "
                             "ones are laid over earlier ones")
    args = parser.parse_args()
    print(" ".join(preset_flags(args.params, *args.presets)))


if __name__ == "__main__":
    run_main(main)
