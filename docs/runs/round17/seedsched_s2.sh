# As run in the seventeenth round (docs/benchmark.md), with this machine's paths: /work/seedsched_s2,
# a copy of /work/s2 (seed 2's benchmark set) at main, its 1 800 images without labels removed
# (the benchmark's default has none). The seed's schedule: params.yaml as it ships (10 + 30
# teacher epochs, 10 + 40 student, 10 QAT, partial unfreezing at 1e-4, early stopping on val
# loss, the teacher run on each epoch's fresh augmentation) with one change: the teacher is
# Lite2 at 260 px, whose ImageNet weights install offline (the seed's B3 downloads them).
set -e
cd /work/seedsched_s2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
if [ -f data/hard_s2/unlabelled.txt ]; then
  for name in $(cat data/hard_s2/unlabelled.txt); do rm data/hard_s2/images/$name; done
  rm data/hard_s2/unlabelled.txt
fi
ls data/hard_s2/images | wc -l
python /work/round17/set_params.py params.yaml data.dir=data/hard_s2 teacher.architecture=efficientnet_lite2 teacher.input_size=260
git diff params.yaml | grep "^[-+] " || true
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
python -m tools.score_package /work/round16/pkg_pool600_s2 data/hard_s2_test1000 --against outputs/run_001
cp -a outputs/run_001 /work/round17/pkg_seedsched_s2
