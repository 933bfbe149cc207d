# As run in the sixteenth round (docs/benchmark.md), with this machine's paths: /work/s2 after
# teacher32_s2.sh (seed 2 with its 1800 images without labels, the patient teacher trained and
# cached), copied whole to /work/s2b and /work/s2c before this script.
# The pool run with three times the images without labels at the same cost: 4 teacher passes and
# 4 fine-tune epochs over the 2 400 images (the fifteenth round: 8 and 8 over 1 200), so the
# teacher labels as many augmented images and the student takes as many steps.
set -e
cd /work/s2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python /work/round16/set_params.py params.yaml student.epochs_finetune=4 distillation.teacher_passes=4 distillation.use_unlabelled=true
git diff params.yaml | grep "^[-+] " || true
dvc status train_teacher --with-deps | tee /dev/stderr | grep -q "up to date" || { echo "the teacher would train again: stopped"; exit 1; }
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/round16/pkg_pool1800_s2
