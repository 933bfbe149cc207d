"""Hand-made mutants of the C reader (config_reader.c) and of the C app's decision rule
(classify.c), each run against the C tests that guard them.

No maintained mutation tool for C fits here (they need LLVM plug-ins or a build system of their
own), so each mutant is one small, realistic bug written out below: the text it replaces, the
text it puts instead, and what it would do to a phone. For each, the repository's tracked files
are copied to a scratch folder, the change is made there (it must match exactly once), and the
C tests run on that copy, which builds its own app from the mutated source. A mutant is killed
when a test fails. Run from the repository root:

    python scripts/c_mutants.py [--only NAME ...]

Prints one line per mutant and the score; exits 1 when one survives.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READER = "stages/c_reference/config_reader.c"
APP = "stages/c_reference/classify.c"
# The conformance corpus runs every case through the C app (and a sanitized build) and through
# predict, comparing verdicts, labels and printed probabilities: the C tests that reach the
# reader and the decision rule without the slower pipeline workspace.
TESTS = ["tests/deployment/test_config_conformance.py"]

# name: (file, original text, mutated text, what it would do to a phone)
MUTANTS = {
    "class_name_check_skipped": (
        READER, "if (strcmp(row_class->text, name->text) != 0) {", "if (0) {",
        "a threshold row of another class is applied to this one"),
    "threshold_consistency_reaches_only": (
        READER, "return reaches && below;", "return reaches && (below || 1);",
        "an int8 threshold below the one the probability gives passes"),
    "threshold_consistency_below_only": (
        READER, "return reaches && below;", "return (reaches || 1) && below;",
        "an int8 threshold above the one the probability gives passes"),
    "threshold_tolerance_sign": (
        READER, ">= p - THRESHOLD_TOLERANCE", ">= p + THRESHOLD_TOLERANCE",
        "a threshold exactly on an int8 step is refused"),
    "probability_above_one_accepted": (
        READER, "p->number < 0 || p->number > 1", "p->number < 0 || p->number > 2",
        "a probability threshold of 1.5 passes"),
    "threshold_int8_range_widened": (
        READER, "integer_in(q, -128, 128, where", "integer_in(q, -129, 128, where",
        "an int8 threshold of -129 passes"),
    "format_version_ignored": (
        READER, "if (version != CONFIG_FORMAT_VERSION) {", "if (0) {",
        "a config of another format version is read as this one"),
    "sha256_length_unchecked": (
        READER, "return i == 64;", "return i > 0;",
        "a cut model hash passes"),
    "rows_count_unchecked": (
        READER, "|| (int)rows->count != config->num_classes", "",
        "fewer threshold rows than classes: the app reads past them"),
    "duplicate_label_adjacent_missed": (
        READER, "for (j = 0; j < i; ++j)", "for (j = 0; j + 1 < i; ++j)",
        "two equal labels side by side pass"),
    "labels_file_extra_lines_accepted": (
        READER, "if (i < config->num_classes || line < text + size) {",
        "if (i < config->num_classes) {",
        "labels.txt with more lines than classes passes"),
    "labels_file_compared_by_first_character": (
        READER, "strcmp(line, config->classes[i]) != 0",
        "strncmp(line, config->classes[i], 1) != 0",
        "labels.txt naming other classes passes when the first letters agree"),
    "output_zero_point_range_widened": (
        READER, '"output.quantization.zero_point", -128, 127',
        '"output.quantization.zero_point", -128, 128', "an output zero point of 128 passes"),
    "input_shape_channels_unchecked": (
        READER, "config->input_shape[0] != 1 || config->input_shape[3] != 3",
        "config->input_shape[0] != 1", "a 4-channel input shape passes"),
    "kernels_choice_widened": (
        READER, '"builtin|reference|xnnpack"', '"builtin|reference|xnnpack|gpu"',
        "an unknown kernel path passes"),
    "decision_strictly_above": (
        APP, "if (outputs[c] < config.int8_thresholds[c]) continue;",
        "if (outputs[c] <= config.int8_thresholds[c]) continue;",
        "an output exactly on its threshold is not predicted (Python predicts it)"),
    "decision_one_step_low": (
        APP, "if (outputs[c] < config.int8_thresholds[c]) continue;",
        "if (outputs[c] < config.int8_thresholds[c] - 1) continue;",
        "an output one step under its threshold is predicted"),
    "printed_probability_zero_point_sign": (
        APP, "exp(-(outputs[c] - config.output_zero_point) * config.output_scale)",
        "exp(-(outputs[c] + config.output_zero_point) * config.output_scale)",
        "the printed probability is wrong"),
}


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name]


def mutated_copy(scratch: Path, file: str, original: str, mutated: str) -> Path:
    root = scratch / "repo"
    for name in tracked_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(name).is_file():
            shutil.copy2(name, target)
    source = (root / file).read_text(encoding="utf-8")
    if original and source.count(original) != 1:
        raise SystemExit(f"{file}: the text to mutate occurs {source.count(original)} times, "
                         f"not once: {original!r}")
    if original:
        (root / file).write_text(source.replace(original, mutated), encoding="utf-8")
    return root


def run_tests(root: Path) -> tuple[bool, str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-n0", "-p",
                             "no:cacheprovider", *TESTS], cwd=root, env=env,
                            capture_output=True, text=True)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    return result.returncode != 0, (failed[0] if failed else result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run these mutants only")
    args = parser.parse_args()
    names = args.only or list(MUTANTS)
    # the same tests on an unchanged copy must pass, or every mutant would look killed
    with tempfile.TemporaryDirectory(prefix="c-mutant-") as scratch:
        failing, evidence = run_tests(mutated_copy(Path(scratch), APP, "", ""))
    if failing:
        print(f"the C tests fail on an unchanged copy: {evidence}", file=sys.stderr)
        return 2
    killed = 0
    for name in names:
        file, original, mutated, effect = MUTANTS[name]
        started = time.time()
        with tempfile.TemporaryDirectory(prefix="c-mutant-") as scratch:
            root = mutated_copy(Path(scratch), file, original, mutated)
            dead, evidence = run_tests(root)
        killed += dead
        print(f"{'killed  ' if dead else 'SURVIVED'} {name} ({Path(file).name}; {effect}; "
              f"{time.time() - started:.0f} s): {evidence}", flush=True)
    print(f"C mutants killed: {killed} of {len(names)} ({100 * killed / len(names):.0f} %)")
    return 0 if killed == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
