"""User-facing errors: a clear message and a non-zero exit, never a Python traceback."""
from __future__ import annotations

import sys
from pathlib import Path
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


def read_utf8(path: Path, not_found: str, bom: bool = False) -> str:
    """A user's text file as a string; UserError naming the file, and the line of a byte that
    is not UTF-8. ``not_found`` says what to do when the file is missing; ``bom`` drops a
    leading UTF-8 byte-order mark."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: {not_found}") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read: {error.strerror or error}") from None
    if bom:
        data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 text") from None
