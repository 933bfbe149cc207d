# As run at the end of the eighteenth round (docs/benchmark.md), with this machine's paths, for
# the next round: seed 1's labels-only run at 300 px (24 epochs, as seed 2's), in /work/r18_s1L,
# a fresh clone of main beside /work/r18_s1 (teacher300_s1.sh), whose params it takes with
# distillation.alpha 1.0. Its teacher is not trained (0 epochs): with alpha 1.0 no teacher
# output reaches the loss, and the student's passes do not depend on the teacher. It ran beside
# seed 1's teacher, so its times are not a measurement; seed 2's labels-only run at 300 px gives
# the time of the same epochs on as many images.
set -e
git clone -q /work/main /work/r18_s1L
cd /work/r18_s1L
ln -s /work/main/.venv .venv
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
python -m tools.make_benchmark_data --params /work/round18/pool.yaml --seed 1 --out data/hard_s1
python -m tools.make_benchmark_data --params /work/round18/big.yaml --seed 1 --out data/hard_s1_test1000
cp /work/r18_s1/params.yaml params.yaml
python /work/round18/set_params.py params.yaml distillation.alpha=1.0 student.epochs_finetune=24 teacher.epochs_head=0 teacher.epochs_finetune=0
git diff params.yaml | grep "^[-+] " || true
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s1_test1000
cp -a outputs/run_001 /work/round18/pkg_s300labels24_s1
