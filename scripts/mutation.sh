#!/usr/bin/env bash
# Mutation testing of the modules where a silent bug changes what users get (issue 30):
# mutmut on the Python modules listed in scripts/mutation_score.py, run against their fast unit
# tests (pyproject.toml, [tool.mutmut]); then the hand-made C mutants (scripts/c_mutants.py).
# Writes docs/mutation_report.md and exits 1 when a module scores under 90 % or a C mutant
# survives. Not part of CI (it takes longer than CI's budget allows); run it before changing the
# tests or the modules it covers:
#
#     scripts/mutation.sh            # everything
#     scripts/mutation.sh python     # mutmut only
#     scripts/mutation.sh c          # the C mutants only
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
what=${1:-all}
status=0
started=$(date +%s)
if [[ $what == all || $what == python ]]; then
    mapfile -t patterns < <("$PYTHON" scripts/mutation_score.py --patterns)
    mkdir -p mutants
    # mutmut redraws a spinner many times a second, and lists every killed mutant at the end:
    # the log keeps the rest
    "$PYTHON" -m mutmut run "${patterns[@]}" 2>&1 | tr '\r' '\n' \
        | grep -v -e '^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]' -e '^🎉' > mutants/run.log \
        || { tail -20 mutants/run.log; exit 1; }
    echo "mutmut: $(( $(date +%s) - started )) s ($(lscpu | sed -n 's/^Model name: *//p'))"
    "$PYTHON" scripts/mutation_score.py --report docs/mutation_report.md || status=1
fi
if [[ $what == all || $what == c ]]; then
    "$PYTHON" scripts/c_mutants.py || status=1
fi
echo "mutation testing: $(( $(date +%s) - started )) s in all"
exit $status
