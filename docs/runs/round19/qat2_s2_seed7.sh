# As run at the end of the nineteenth round (a probe for the next): seed 2's pair with training
# seed 7 (s300_pair_s2_seed7.sh) with two QAT epochs instead of one, from the QAT stage on
# (the students kept). WHICH is pool (/work/r18b_s2) or labels (/work/r18c_s2).
set -e
WHICH=$1
case $WHICH in pool) DIR=/work/r18b_s2 ;; labels) DIR=/work/r18c_s2 ;; *) exit 2 ;; esac
cd $DIR
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
python /work/round18/set_params.py params.yaml qat.epochs=2
git diff params.yaml | grep "^[-+] " || true
md5sum models/student/*
rm -rf models/checkpoints
dvc repro --downstream qat
md5sum models/student/*
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/round19/pkg_qat2${WHICH}_s2_seed7
