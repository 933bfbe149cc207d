"""Running git and DVC in a throw-away repository, with a fixed author and no analytics.

Every command is bounded in time: a DVC command that hangs (a queue worker that never answers,
say) fails its test with the command and what it printed, instead of holding CI until its limit.
The command runs in a session of its own, so that on timeout its children (the stages DVC
starts) are killed with it."""
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}
COMMAND_TIMEOUT_S = 900  # the longest here, the tiny pipeline's first `dvc repro`: about 180 s


def run(*command, cwd, timeout_s: float = COMMAND_TIMEOUT_S):
    env = {**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # a grandchild in a session of its own holds a pipe
            stdout, stderr = "", ""
        raise AssertionError(f"{command} did not end within {timeout_s} s and was killed with "
                             f"its children; it printed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    assert process.returncode == 0, f"{command}: {stdout}\n{stderr}"
    return stdout


def dvc(*args, cwd):
    return run(sys.executable, "-m", "dvc", *args, cwd=cwd)
