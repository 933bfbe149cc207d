"""What every stage script's command line shares."""
import argparse
import os
from pathlib import Path

from stages.common.core import layout


def stage_parser(doc: str, params: bool = True) -> argparse.ArgumentParser:
    """A parser whose --help shows the script's docstring; ``--params`` names the params file."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if params:
        parser.add_argument("--params", default="params.yaml",
                            help="params file (default: %(default)s)")
    return parser


def add_shards(parser: argparse.ArgumentParser) -> None:
    """``--shards``, for the training stages: on a cluster, the URL every worker reads them at."""
    parser.add_argument("--shards", default=str(layout.SHARDS),
                        help="the shards stage's folder, or a URL of the same files that every "
                             "worker of a cluster reads (file:///shared/shards, gs://bucket/"
                             "shards) (default: %(default)s)")


def add_evaluation_data(parser: argparse.ArgumentParser) -> None:
    """``--prepared`` and ``--shards``, for the commands that take ``--model``: the data a model
    is tuned or scored on is named with it, never taken from the default place behind it."""
    parser.add_argument("--prepared", default=str(layout.PREPARED),
                        help="the prepare stage's folder of the data (default: %(default)s)")
    parser.add_argument("--shards", default=str(layout.SHARDS),
                        help="the shards written from that folder (default: %(default)s)")


def add_max_image_pixels(parser: argparse.ArgumentParser, default: int) -> None:
    """``--max_image_pixels``, for the commands that read images the user names."""
    parser.add_argument("--max_image_pixels", type=int, default=default,
                        help="refuse images whose header claims more pixels (default: %(default)s)")


def require_positive(args: argparse.Namespace, *names: str) -> None:
    """UserError naming the first of these integer options that is below 1."""
    from stages.common.core.errors import UserError

    for name in names:
        value = getattr(args, name)
        if value < 1:
            raise UserError(f"--{name} must be a positive integer, got {value}")


def stage_process_env() -> dict[str, str]:
    """The environment for a child process that runs ``python -m stages.<name>`` from another
    folder (a work folder, a temporary one): this checkout on its PYTHONPATH."""
    checkout = str(Path(__file__).resolve().parents[3])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [checkout, *filter(None, [os.environ.get("PYTHONPATH")])])}
