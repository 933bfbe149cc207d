# As run in the seventeenth round (docs/benchmark.md), with this machine's paths: /work/seedsched_s1,
# a git clone of main with .venv a link to main's, seed 1's benchmark set written by
# `python -m tools.make_benchmark_data --seed 1` (and --params with test_images 1000 for the
# 1000-image test set). The seed's schedule: params.yaml as it ships (10 + 30
# teacher epochs, 10 + 40 student, 10 QAT, partial unfreezing at 1e-4, early stopping on val
# loss, the teacher run on each epoch's fresh augmentation) with one change: the teacher is
# Lite2 at 260 px, whose ImageNet weights install offline (the seed's B3 downloads them).
set -e
cd /work/seedsched_s1
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
if [ -f data/hard_s1/unlabelled.txt ]; then
  for name in $(cat data/hard_s1/unlabelled.txt); do rm data/hard_s1/images/$name; done
  rm data/hard_s1/unlabelled.txt
fi
ls data/hard_s1/images | wc -l
python /work/round17/set_params.py params.yaml data.dir=data/hard_s1 teacher.architecture=efficientnet_lite2 teacher.input_size=260
git diff params.yaml | grep "^[-+] " || true
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s1_test1000
cp -a outputs/run_001 /work/round17/pkg_seedsched_s1
