# As run in the fifteenth round (docs/benchmark.md), with this machine's paths: /work/s1 is a git
# clone of main, .venv a link to main's; /work/stamp.py prefixes each line with its seconds since
# the start. Seed 1 of the benchmark written with 600 images without labels from the start (the
# teacher never reads them), then its patient teacher (1 + 32 epochs), the user's way: the
# distilled preset's values and the round's overrides written into params.yaml (as `dvc exp run -S`
# would) and `dvc repro train_teacher`.
set -e
cd /work/s1
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
sed 's/^  unlabelled_images: 0 /  unlabelled_images: 600 /' params.yaml > /work/round15/pool.yaml
sed 's/^  test_images: 200/  test_images: 1000/' params.yaml > /work/round15/big.yaml
grep -q "unlabelled_images: 600" /work/round15/pool.yaml && grep -q "test_images: 1000" /work/round15/big.yaml
python -m tools.make_benchmark_data --params /work/round15/pool.yaml --seed 1 --out data/hard_s1
python -m tools.make_benchmark_data --params /work/round15/big.yaml --seed 1 --out data/hard_s1_test1000
D=$(python -m tools.preset presets/distilled.yaml | sed 's/-S //g')
python /work/round15/set_params.py params.yaml $D teacher.epochs_finetune=32 teacher.early_stopping_patience=32 student.early_stopping_patience=32 data.dir=data/hard_s1
git diff --stat params.yaml
dvc repro train_teacher
md5sum models/teacher/*
