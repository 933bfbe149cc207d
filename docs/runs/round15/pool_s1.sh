# As run in the fifteenth round (docs/benchmark.md), with this machine's paths: /work/s1 after
# teacher32_s1.sh (seed 1 with its 600 images without labels, the patient teacher trained and
# cached), copied whole to /work/s1b for labels24_s1.sh, which started at the same moment.
# The pool run: 8 fine-tune epochs over the 1 200 images, distillation.use_unlabelled.
set -e
cd /work/s1
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python /work/round15/set_params.py params.yaml student.epochs_finetune=8 distillation.use_unlabelled=true
git diff params.yaml | grep "^[-+] " || true
dvc status train_teacher --with-deps | tee /dev/stderr | grep -q "up to date" || { echo "the teacher would train again: stopped"; exit 1; }
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s1_test1000
cp -a outputs/run_001 /work/round15/pkg_pool_s1
