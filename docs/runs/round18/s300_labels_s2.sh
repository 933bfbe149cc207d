# As run in the eighteenth round (docs/benchmark.md), with this machine's paths: /work/r18c_s2, a
# copy of /work/r18b_s2 after s300_pool_s2.sh. Labels alone for the student at 300 px, EPOCHS
# fine-tune epochs (the first argument), chosen after s300_pool_s2.sh so that this run's student
# and QAT stages, less the teacher passes a labels-only run computes and never uses, take about
# the pool run's time. Eight fixed passes, as the sixteenth round's labels-only runs.
set -e
EPOCHS=$1
cd /work/r18c_s2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python /work/round18/set_params.py params.yaml student.epochs_finetune=$EPOCHS distillation.alpha=1.0
git diff params.yaml | grep "^[-+] " || true
dvc repro --downstream train_student
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
for other in s300pool_s2; do
  python -m tools.score_package /work/round18/pkg_${other} data/hard_s2_test1000 --against outputs/run_001
done
for other in labels28 labels34; do
  python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round16/pkg_${other}_s2
done
cp -a outputs/run_001 /work/round18/pkg_s300labels${EPOCHS}_s2
