"""The suite's own guard against a hung command: tests/helpers/git_dvc.run, through which every
git and DVC command of the tests goes, kills a command that outlives its time, with the children
it started, and fails naming it."""
import time
from pathlib import Path

import pytest
from helpers.git_dvc import run


def _alive(pid: int) -> bool:
    """Running, or a zombie no one has reaped yet (counted as ended)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_hung_command_is_killed_with_its_children_and_named(tmp_path):
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"did not end within 1 s.*\n.*waiting"):
        run("sh", "-c", f"sleep 60 & echo $! > {pid_file}; echo waiting; wait", cwd=tmp_path,
            timeout_s=1)
    assert time.monotonic() - started < 20
    child = int(pid_file.read_text())
    for _ in range(50):  # the kill is sent; the child's exit is reaped by init a moment later
        if not _alive(child):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the command's child {child} outlived it")


def test_a_command_that_ends_gives_its_output(tmp_path):
    assert run("sh", "-c", "echo done", cwd=tmp_path) == "done\n"
