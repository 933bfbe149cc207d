"""What every stage script's command line shares."""
import argparse


def stage_parser(doc: str, params: bool = True) -> argparse.ArgumentParser:
    """A parser whose --help shows the script's docstring; ``--params`` names the params file."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if params:
        parser.add_argument("--params", default="params.yaml",
                            help="params file (default: %(default)s)")
    return parser
