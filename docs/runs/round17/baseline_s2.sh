# As run in the seventeenth round (docs/benchmark.md), with this machine's paths: /work/baseline_s2,
# a copy of /work/s2 (seed 2's benchmark set) at main, its 1 800 images without labels removed.
# The Model Maker-like baseline of the third round: the fast preset's student with its backbone
# frozen, 30 head epochs on one cached augmented pass of ImageNet features, no QAT epoch; the
# ptq_baseline stage gives the head-only model after post-training quantization.
set -e
cd /work/baseline_s2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
if [ -f data/hard_s2/unlabelled.txt ]; then
  for name in $(cat data/hard_s2/unlabelled.txt); do rm data/hard_s2/images/$name; done
  rm data/hard_s2/unlabelled.txt
fi
ls data/hard_s2/images | wc -l
F=$(python -m tools.preset presets/fast.yaml | sed 's/-S //g')
python /work/round17/set_params.py params.yaml $F student.epochs_finetune=0 student.epochs_head=30 student.head_feature_passes=1 qat.epochs=0 data.dir=data/hard_s2
git diff params.yaml | grep "^[-+] " || true
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cat metrics/quantization.json
cp -a outputs/run_001 /work/round17/pkg_baseline_s2
