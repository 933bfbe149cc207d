# As run in the sixteenth round (docs/benchmark.md), with this machine's paths: /work/s2c, a copy
# of /work/s2 after teacher32_s2.sh. Labels alone, EPOCHS fine-tune epochs (the first argument):
# chosen after pool1800_s2.sh so that this run's student and QAT stages, less the teacher passes a
# labels-only run computes and never uses, take about the pool run's time.
set -e
EPOCHS=$1
cd /work/s2c
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python /work/round16/set_params.py params.yaml student.epochs_finetune=$EPOCHS distillation.alpha=1.0
git diff params.yaml | grep "^[-+] " || true
dvc status train_teacher --with-deps | tee /dev/stderr | grep -q "up to date" || { echo "the teacher would train again: stopped"; exit 1; }
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/round16/pkg_labels${EPOCHS}_s2
