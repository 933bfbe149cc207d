"""Folders a stage replaces whole: never somebody else's, never left half-written.

A stage that rewrites a folder (the five outputs, the demo dataset, the PR curves, the shards)
writes the new content into a temporary sibling, ``.<name>.writing-XXXX``, and swaps it in with
one rename. A crash or a kill at any point leaves either the previous content or the new one,
never a mix; the previous content is deleted only after the swap.

A folder that exists, is not empty and does not hold an earlier output of the same kind is
never touched: the stage stops and says so (``output.dir: ~/Documents`` must not wipe the
user's documents). Each kind of folder says how it recognises its own content (``owned``): by
default a marker file that the pipeline writes into every folder it creates this way.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from stages.common.core.errors import UserError

MARKER = ".written-by-multilabel-pipeline"
_STAGING = ".writing-"
_RETIRED = ".replaced-"


def has_marker(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def _is_empty(folder: Path) -> bool:
    return next(folder.iterdir(), None) is None


def check_replaceable(target: str | Path, owned: Callable[[Path], bool] = has_marker,
                      what: str = "an output of this pipeline") -> None:
    """Raise UserError unless ``target`` is absent, empty, or ``owned`` (ours to replace)."""
    target = Path(target)
    if target.is_symlink():
        raise UserError(f"{target}: is a symbolic link; name a real folder for {what}, so "
                        "nothing it points to is replaced")
    if not target.exists():
        return
    if not target.is_dir():
        raise UserError(f"{target}: is a file, not a folder; name a folder for {what}")
    try:
        if _is_empty(target) or owned(target):
            return
    except OSError as error:
        raise UserError(f"{target}: cannot be read: {error.strerror or error}") from None
    raise UserError(f"{target}: this folder is not empty and does not hold {what}, so it is left "
                    "untouched; name a new or empty folder, or move its files away first")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _remove_leftovers(target: Path) -> None:
    """Staging and retired folders of ``target`` left by a run that was killed."""
    for prefix in (_STAGING, _RETIRED):
        for leftover in target.parent.glob(glob.escape(f".{target.name}{prefix}") + "*"):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second),
                     rename_exchange) == 0


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists() or (target.is_dir() and _is_empty(target)):
        os.replace(staging, target)  # an empty folder is replaced by the rename itself
        return
    if _exchange(staging, target):
        shutil.rmtree(staging)  # now holds the previous content
        return
    # Elsewhere two renames: a kill between them leaves the previous content in the retired
    # folder beside it (and the next run cleans it up); the new content is complete either way.
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}{_RETIRED}", dir=target.parent))
    os.replace(target, retired / "content")
    os.replace(staging, target)
    shutil.rmtree(retired)


@contextmanager
def replaced_folder(target: str | Path, owned: Callable[[Path], bool] = has_marker,
                    what: str = "an output of this pipeline", mark: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends without error it becomes ``target``.

    With ``mark`` the marker file goes in first, so ``has_marker`` recognises the folder later;
    kinds of folder that must hold nothing else (the five outputs) pass ``mark=False`` and an
    ``owned`` of their own. On an error or interruption the staging folder is removed and
    ``target`` is as it was.
    """
    target = Path(target)
    check_replaceable(target, owned, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{_STAGING}", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would make the result private
    try:
        if mark:
            (staging / MARKER).write_text("This folder is written whole by a stage of the "
                                          "multi-label pipeline and replaced on its next run.\n")
        yield staging
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
