# As run in the nineteenth round (docs/benchmark.md), with this machine's paths: seed 2's pair at
# 300 px again with training seed 7 instead of 1337, on the same 300 px teacher (kept: it was
# trained with seed 1337, and both runs share it). WHICH is pool (/work/r18b_s2, after
# docs/runs/round18/s300_pool_s2.sh) or labels (/work/r18c_s2, after s300_labels_s2.sh 24).
# The stages from train_student on; the student's checkpoints of the earlier run are removed.
set -e
WHICH=$1
case $WHICH in pool) DIR=/work/r18b_s2 ;; labels) DIR=/work/r18c_s2 ;; *) exit 2 ;; esac
cd $DIR
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python /work/round18/set_params.py params.yaml seed=7
git diff params.yaml | grep "^[-+] " || true
md5sum models/teacher/*
rm -rf models/checkpoints
dvc repro --downstream train_student
md5sum models/teacher/*
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/round19/pkg_s300${WHICH}_s2_seed7
