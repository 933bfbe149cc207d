"""Rewrite the Python deps of every stage in dvc.yaml to the stage's import closure.

After moving or splitting a module, `python scripts/sync_stage_deps.py` puts each stage's
``.py`` deps in step with what its command imports (the same analysis as
tests/stages/test_stage_deps.py, which fails until they are). The script's own file comes first,
then the rest in path order; other deps (data, models), comments and layout are kept as they are.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import yaml  # noqa: E402
from helpers.import_graph import import_closure, script_of  # noqa: E402

DEP_LINE = re.compile(r"^(\s+)- (\S+\.py)\s*$")


def synced(text: str) -> str:
    stages = yaml.safe_load(text)["stages"]
    lines = text.splitlines(keepends=True)
    out, stage, in_deps, written = [], None, False, False
    for line in lines:
        header = re.match(r"^  (\w+):\s*$", line)
        if header:
            stage = header.group(1)
        if re.match(r"^    deps:\s*$", line):
            in_deps, written = True, False
            out.append(line)
            continue
        if in_deps and not re.match(r"^      ", line):
            in_deps = False
        match = DEP_LINE.match(line) if in_deps else None
        if match:
            if not written:
                script = script_of(stages[stage]["cmd"])
                rest = sorted(p for p in import_closure(script) if p != script)
                for path in [script, *rest]:
                    out.append(f"{match.group(1)}- {path.relative_to(REPO)}\n")
                written = True
            continue
        out.append(line)
    return "".join(out)


if __name__ == "__main__":
    dvc_file = REPO / "dvc.yaml"
    before = dvc_file.read_text(encoding="utf-8")
    after = synced(before)
    dvc_file.write_text(after, encoding="utf-8")
    print("dvc.yaml: deps rewritten" if after != before else "dvc.yaml: deps already in step")
