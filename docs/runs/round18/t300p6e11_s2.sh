# As run in the eighteenth round (docs/benchmark.md), with this machine's paths: /work/r18_s2, a
# copy of the seventeenth round's /work/t300_s2 (seed 2, 600 images without labels, the teacher at
# 300 px already trained), with the teacher's passes compiled (commit of this round). The time the
# compiled passes save goes to student epochs: 6 passes instead of 8, 11 fine-tune epochs over the
# 1 200 images instead of 8, about the seventeenth round's student + QAT time (1 229 s).
# The teacher's code dependency changed (input_pipeline.py), not its training: it is kept, and
# the stages from train_student on run (dvc repro --downstream).
set -e
cd /work/r18_s2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
git diff --stat -- stages
python /work/round18/set_params.py params.yaml distillation.teacher_passes=6 student.epochs_finetune=11
git diff params.yaml | grep "^[-+] " || true
md5sum models/teacher/*
dvc repro --downstream train_student
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
for other in pool600 labels28 labels34; do
  python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round16/pkg_${other}_s2
done
python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round17/pkg_t300_s2
cp -a outputs/run_001 /work/round18/pkg_t300p6e11_s2
