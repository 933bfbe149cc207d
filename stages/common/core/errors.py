"""User-facing errors: a clear message and a non-zero exit, never a Python traceback."""
from __future__ import annotations

import errno
import json
import os
import stat
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


class NotRegularFileError(OSError):
    """A FIFO, device, socket or folder where a file belongs: reading it could block forever or
    never end, so it is refused before it is opened for reading."""

    def __init__(self, path):
        super().__init__(errno.EINVAL, "not a regular file (a FIFO, device, socket or folder)",
                         str(path))


def read_regular_file(path: str | Path) -> bytes:
    """The bytes of a regular file (a symbolic link to one is fine); NotRegularFileError for
    anything else, checked before the file is opened and again on the opened descriptor."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotRegularFileError(path)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # swapped since the first check
            raise NotRegularFileError(path)
        return file.read()


def way_back(artefact: str | Path, stage: str) -> str:
    """How a user gets a missing or damaged artefact of ``stage`` back, in one wording."""
    return f"get it back with `dvc checkout {artefact}` or rebuild it with `dvc repro -f {stage}`"


def read_utf8(path: Path, not_found: str, bom: bool = False,
              max_bytes: int | None = None) -> str:
    """A text file as a string; UserError naming the file, and the line of a byte that is not
    UTF-8. ``not_found`` says what to do when the file is missing; ``bom`` drops a leading UTF-8
    byte-order mark; ``max_bytes`` refuses a larger file. Only a regular file is read."""
    try:
        data = read_regular_file(path)
    except FileNotFoundError:
        raise UserError(f"{path}: {not_found}") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise UserError(f"{path}: cannot be read: {getattr(error, 'strerror', None) or error}"
                        ) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise UserError(f"{path}: larger than {max_bytes} bytes")
    if bom:
        data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 text") from None


def read_json_file(path: str | Path, stage: str):
    """A JSON file the stage ``stage`` wrote; UserError naming it, and how to get it back,
    when it is missing or damaged (cut, not UTF-8, not JSON)."""
    path = Path(path)
    back = f"it is written by the stage {stage}: {way_back(path, stage)}"
    try:
        return json.loads(read_regular_file(path).decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing; {back}") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read: {error.strerror or error}") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(f"{path}: damaged ({error}); {back}") from None

