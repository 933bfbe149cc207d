# As run in the fifteenth round (docs/benchmark.md), with this machine's paths: /work/s2 after
# teacher32_s2.sh (seed 2 with its 600 images without labels, the patient teacher trained and
# cached), copied whole to /work/s2b for this script, started at the same moment.
# Labels alone with 24 epochs (about the pool run's time, as on seed 2), beside the pool run.
set -e
cd /work/s2b
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python /work/round15/set_params.py params.yaml student.epochs_finetune=24 distillation.alpha=1.0
git diff params.yaml | grep "^[-+] " || true
dvc status train_teacher --with-deps | tee /dev/stderr | grep -q "up to date" || { echo "the teacher would train again: stopped"; exit 1; }
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/round15/pkg_l24_s2
