#!/usr/bin/env bash
# The GPU check (docs/scale_out.md, "GPU check"): on an NVIDIA machine, install the requirements in a
# fresh virtual environment (TensorFlow with its CUDA libraries), then run the demo pipeline
# with mixed precision and print the table (tests/helpers/gpu_check.py). Under 8 minutes on one GPU.
#
#   bash tests/helpers/gpu_check.sh [--out results.json]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${GPU_CHECK_VENV:-/tmp/gpu_check_venv}"
started=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
tf_pin=$(grep -E '^tensorflow==' requirements.txt | cut -d= -f3 | cut -d' ' -f1)
"$venv/bin/pip" install -q -r requirements.txt "tensorflow[and-cuda]==$tf_pin"
echo "gpu_check: requirements installed in $(( $(date +%s) - started )) s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
lscpu | grep 'Model name' || true
PYTHONPATH="$PWD" "$venv/bin/python" tests/helpers/gpu_check.py "$@"
echo "gpu_check: done in $(( $(date +%s) - started )) s"
