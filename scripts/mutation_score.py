"""Mutation score per module from mutmut's results, with the set-aside mutants taken out.

Run by scripts/mutation.sh after ``mutmut run``, from the repository root:

    python scripts/mutation_score.py --patterns     # the mutant names mutation.sh runs
    python scripts/mutation_score.py --report docs/mutation_report.md

The score of a module is killed / (mutants - set aside). A timeout counts as killed (the test
run did not finish as the original's did). "no tests" counts as survived: no fast test calls that
code. Set-aside mutants are listed in scripts/mutation_set_aside.yaml, each with the reason; an
entry whose mutant no longer exists, no longer makes the change written beside it, or is now
killed is reported as stale, so the list cannot drift from the code. Exits 1 when a module is
under the bar or the list is stale.
"""
from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import sys
from pathlib import Path

import yaml

BAR = 0.90

# The functions that build the params schema's rules when params_schema.py is imported: mutmut
# forks its workers after that import, so it cannot switch a mutant on there (see NOT_RUN).
IMPORT_TIME_PARAMS = {"_key", "_folder", "_grid_value", "_fraction", "_positive_int",
                      "_non_negative_int", "_positive_number"}


def _every_function_but(path: str, left_out: set[str]) -> list[str]:
    """Patterns for the mutants of every function and method in ``path`` but ``left_out``."""
    module = path.removesuffix(".py").replace("/", ".")
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    missing = left_out - set(functions)
    if missing:
        raise SystemExit(f"{path}: no function {sorted(missing)}; update IMPORT_TIME_PARAMS")
    return [f"{module}.x_{name}__mutmut_*" for name in functions if name not in left_out] + [
        f"{module}.xǁ*"]


# module -> the mutant names (fnmatch patterns) that belong to it. int8_runtime.py is narrowed to
# the functions the mutation run is meant for: the INT8 threshold conversion.
MODULES = {
    "scoring/metrics.py": ["stages.common.scoring.metrics.*"],
    "scoring/threshold_search.py": ["stages.common.scoring.threshold_search.*"],
    "quantization/int8_runtime.py (threshold conversion)": [
        "stages.common.quantization.int8_runtime.x_int8_threshold__*",
        "stages.common.quantization.int8_runtime.x_probability_table__*"],
    "deployment/inference_config.py (schema, model-vs-config checks)": [
        "stages.common.deployment.inference_config.*"],
    "deployment/strict_json.py": ["stages.common.deployment.strict_json.*"],
    "core/params.py": ["stages.common.core.params.*"],
    "core/params_schema.py": _every_function_but("stages/common/core/params_schema.py",
                                                 IMPORT_TIME_PARAMS),
    "core/yaml_files.py": ["stages.common.core.yaml_files.*"],
    "data/dataset_validation.py": ["stages.common.data.dataset_validation.*"],
    "data/split_files.py": ["stages.common.data.split_files.*"],
    "core/output_folders.py": ["stages.common.core.output_folders.*"],
    "training/distillation.py": ["stages.common.training.distillation.*"],
    "data/teacher_outputs.py": [
        "stages.common.data.teacher_outputs.*"],
}
# Code the run leaves out, and why: it is reported under the table.
NOT_RUN = {
    "core/params_schema.py": (
        "the functions that build the schema's rules when params_schema.py is imported ("
        + ", ".join(f"`{name}`" for name in sorted(IMPORT_TIME_PARAMS)) + "): mutmut forks its "
        "workers after that import, so "
        "it cannot switch a mutant on there, and each of their 200-odd mutants would run the "
        "tests only to survive. The rules they build are pinned by "
        "`test_params.py::test_every_rule_on_both_sides_of_its_boundary` and the tests of the "
        "shipped file; eight such mutants put into the source by hand each turned test_params.py "
        "red."),
}
KILLED = {1, 3, 36, 24, -24, 152, 255}  # mutmut's exit codes for killed and timeout
SET_ASIDE_FILE = Path("scripts/mutation_set_aside.yaml")


def module_of(name: str) -> str | None:
    for module, patterns in MODULES.items():
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            return module
    return None


def read_results(mutants: Path) -> dict[str, int | None]:
    results = {}
    for meta in sorted(mutants.glob("stages/**/*.py.meta")):
        for name, code in json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"].items():
            if module_of(name):
                results[name] = code
    return results


def changed_lines(name: str) -> tuple[str, str]:
    """The mutant's removed and added lines, each joined and stripped (from mutmut's diff)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    removed, added = [], []
    for line in get_diff_for_mutant(name).splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    return " ".join(removed), " ".join(added)


def set_aside_entries(results: dict) -> tuple[dict[str, str], list[str]]:
    """mutant name -> reason, and the problems of stale entries."""
    entries = yaml.safe_load(SET_ASIDE_FILE.read_text(encoding="utf-8")) or []
    reasons, stale = {}, []
    for entry in entries:
        pattern, why, change = entry["mutants"], entry["why"].strip(), entry.get("change")
        matched = [name for name in results if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            stale.append(f"{pattern}: no such mutant")
            continue
        for name in matched:
            if results[name] in KILLED:
                if "*" not in pattern:
                    stale.append(f"{name}: set aside but killed now; remove the entry")
                continue
            added = changed_lines(name)[1] if change is not None else None
            if added is not None and added != change.strip():
                stale.append(f"{name}: now changes `{added}`, the entry says `{change.strip()}`")
                continue
            reasons[name] = why
    return reasons, stale


def report(results: dict, reasons: dict, stale: list[str]) -> tuple[str, bool]:
    lines = ["| module | mutants | killed | set aside | survived | score |",
             "|---|---|---|---|---|---|"]
    passed = not stale
    survivors = []
    for module in MODULES:
        names = [n for n in results if module_of(n) == module]
        killed = sum(results[n] in KILLED for n in names)
        aside = sum(n in reasons for n in names)
        alive = [n for n in names if results[n] not in KILLED and n not in reasons]
        counted = len(names) - aside
        score = killed / counted if counted else 1.0
        passed &= score >= BAR and bool(names)
        survivors += alive
        lines.append(f"| {module} | {len(names)} | {killed} | {aside} | {len(alive)} | "
                     f"{100 * score:.1f} % |")
    text = "\n".join(lines) + "\n"
    for module, why in NOT_RUN.items():
        text += f"\nNot mutated in {module}: {why}\n"
    if survivors:
        text += "\n**Surviving mutants (not set aside):**\n\n"
        for name in survivors:
            removed, added = changed_lines(name)
            status = "no test calls it" if results[name] in (5, 33) else "survived"
            text += f"- `{name}` ({status}): `{removed}` → `{added}`\n"
    if reasons:
        text += "\n**Set aside** (scripts/mutation_set_aside.yaml):\n\n"
        by_reason: dict[str, list[str]] = {}
        for name, why in reasons.items():
            by_reason.setdefault(why, []).append(name)
        for why, names in by_reason.items():
            text += f"- {why} ({len(names)}):\n"
            for name in names:
                removed, added = changed_lines(name)
                text += f"  - `{name.rpartition('.')[2]}`: `{removed}` → `{added}`\n"
    if stale:
        text += "\n**Stale entries in the set-aside list:**\n\n" + "".join(
            f"- {problem}\n" for problem in stale)
    return text, passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", action="store_true",
                        help="print the mutant-name patterns to run, one per line")
    parser.add_argument("--report", type=Path, help="also write the report (Markdown) here")
    args = parser.parse_args()
    if args.patterns:
        print("\n".join(p for patterns in MODULES.values() for p in patterns))
        return 0
    results = read_results(Path("mutants"))
    if not results:
        print("no mutmut results under mutants/: run scripts/mutation.sh", file=sys.stderr)
        return 1
    reasons, stale = set_aside_entries(results)
    text, passed = report(results, reasons, stale)
    print(text)
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    print(f"every module at {100 * BAR:.0f} % or more: {'yes' if passed else 'NO'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
