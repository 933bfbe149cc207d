# As run in the nineteenth round (docs/benchmark.md), with this machine's paths: /work/r18_s1L after
# docs/runs/round18/labels24_300_s1.sh was killed at the end of the eighteenth round's session
# (fine-tune epoch 4 of 24, beside the teacher). Run again from its first epoch, alone, so that
# its time is a measurement: the checkpoints of the killed run are removed first.
set -e
cd /work/r18_s1L
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
git diff params.yaml | grep "^[-+] " || true
rm -rf models/checkpoints
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s1_test1000
rm -rf /work/round18/pkg_s300labels24_s1
cp -a outputs/run_001 /work/round18/pkg_s300labels24_s1
python -m tools.score_package /work/round19/pkg_s300pool_s1 data/hard_s1_test1000 --against outputs/run_001
