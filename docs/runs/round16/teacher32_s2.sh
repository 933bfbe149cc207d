# As run in the sixteenth round (docs/benchmark.md), with this machine's paths: /work/s2 is a git
# clone of main, .venv a link to main's; /work/stamp.py prefixes each line with its seconds since
# the start. Seed 2 of the benchmark written with 1800 images without labels (three times the
# fifteenth round's pool; the labelled splits are the same bytes), then its patient teacher
# (1 + 32 epochs) as in the fifteenth round.
set -e
cd /work/s2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
sed 's/^  unlabelled_images: 0 /  unlabelled_images: 1800 /' params.yaml > /work/round16/pool_s2.yaml
sed 's/^  test_images: 200/  test_images: 1000/' params.yaml > /work/round16/big_s2.yaml
grep -q "unlabelled_images: 1800" /work/round16/pool_s2.yaml && grep -q "test_images: 1000" /work/round16/big_s2.yaml
python -m tools.make_benchmark_data --params /work/round16/pool_s2.yaml --seed 2 --out data/hard_s2
python -m tools.make_benchmark_data --params /work/round16/big_s2.yaml --seed 2 --out data/hard_s2_test1000
D=$(python -m tools.preset presets/distilled.yaml | sed 's/-S //g')
python /work/round16/set_params.py params.yaml $D teacher.epochs_finetune=32 teacher.early_stopping_patience=32 student.early_stopping_patience=32 data.dir=data/hard_s2
git diff --stat params.yaml
dvc repro train_teacher
md5sum models/teacher/*
