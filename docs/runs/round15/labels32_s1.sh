# As run in the fifteenth round (docs/benchmark.md), with this machine's paths: /work/s1 after
# teacher32_s1.sh (seed 1 with its 600 images without labels, the patient teacher trained and
# cached), copied whole to /work/s1d for this script.
# Labels alone with 32 epochs: the pool run's time and more, the unused teacher passes of a labels-only run
# (about 130 s here) given to the labels as well. Alone, after the seed-2 runs.
set -e
cd /work/s1d
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python /work/round15/set_params.py params.yaml student.epochs_finetune=32 distillation.alpha=1.0
git diff params.yaml | grep "^[-+] " || true
dvc status train_teacher --with-deps | tee /dev/stderr | grep -q "up to date" || { echo "the teacher would train again: stopped"; exit 1; }
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s1_test1000
cp -a outputs/run_001 /work/round15/pkg_l32_s1
