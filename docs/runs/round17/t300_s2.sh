# As run in the seventeenth round (docs/benchmark.md), with this machine's paths: /work/t300_s2, a
# copy of the sixteenth round's /work/s2b (seed 2 with its first 600 images without labels, the
# distilled and unlabelled presets' values in params.yaml, as pool600_s2.sh ran them) at main.
# The one change: the teacher sees the images at 300 px instead of its native 260 (the student
# stays at 240), a teacher that may know more on small, rotated digits. Teacher (1 + 32 epochs),
# then the pool run as the sixteenth round's.
set -e
cd /work/t300_s2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python /work/round17/set_params.py params.yaml teacher.input_size=300
git diff params.yaml | grep "^[-+] " || true
dvc repro train_teacher
md5sum models/teacher/*
cat metrics/teacher.json
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
for other in pool600 labels28 labels34; do
  python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round16/pkg_${other}_s2
done
cp -a outputs/run_001 /work/round17/pkg_t300_s2
