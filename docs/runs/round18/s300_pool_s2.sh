# As run in the eighteenth round (docs/benchmark.md), with this machine's paths: /work/r18b_s2, a
# copy of the seventeenth round's /work/t300_s2 (seed 2, 600 images without labels, teacher at
# 300 px trained), with this round's compiled teacher passes. The one change from the
# seventeenth round's pool run: the student sees the images at 300 px, as its teacher does,
# instead of 240. The shards and the pool are written again for the new student view (the
# teacher's view, the same bytes, is what its weights were trained on), then the stages from
# train_student on (dvc repro --downstream): the teacher is kept.
set -e
cd /work/r18b_s2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
git diff --stat -- stages
python /work/round18/set_params.py params.yaml student.input_size=300
git diff params.yaml | grep "^[-+] " || true
md5sum models/teacher/*
dvc repro --single-item prepare shards unlabelled_images
dvc repro --downstream train_student
md5sum models/teacher/*
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
for other in pool600 labels28 labels34; do
  python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round16/pkg_${other}_s2
done
python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round17/pkg_t300_s2
cp -a outputs/run_001 /work/round18/pkg_s300pool_s2
