"""User-facing errors: a clear message and a non-zero exit, never a Python traceback."""
from __future__ import annotations

import sys
from typing import Callable


class UserError(Exception):
    """A problem with the user's input (params, dataset, arguments) that they can fix.

    The message must name the file, the line where there is one, and the problem.
    """


def run_main(main: Callable[[], int | None]) -> None:
    """Run a stage's ``main`` and turn user errors into a message and exit status 2."""
    try:
        status = main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
