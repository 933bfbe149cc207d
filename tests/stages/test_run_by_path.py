"""Every stage and tool runs by its path (``python stages/prepare.py``, ``python tools/predict.py``)
as well as with ``python -m``, from any folder: a script run by path puts its own folder on
sys.path, not the repository, so each one puts the repository there first."""
import os
import subprocess
import sys

import pytest
from helpers.import_graph import REPO

SCRIPTS = sorted(path.relative_to(REPO) for folder in ("stages", "tools")
                 for path in (REPO / folder).glob("*.py") if path.name != "__init__.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=str)
def test_the_script_runs_by_its_path_from_another_folder(script, tmp_path):
    # as a user runs it: without the PYTHONPATH the test session sets for the stages it starts
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(REPO / script), "--help"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:"), result.stdout[:300]


def test_every_stage_and_tool_is_found():
    assert len([s for s in SCRIPTS if s.parts[0] == "stages"]) == 15
    tools = {script.name for script in SCRIPTS if script.parts[0] == "tools"}
    assert {"cli.py", "predict.py", "preset.py"} <= tools
