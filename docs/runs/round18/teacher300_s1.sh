# As run at the end of the eighteenth round (docs/benchmark.md), with this machine's paths, for
# the next round: seed 1 of the benchmark with 600 images without labels and a 1 000-image test
# set (as the fifteenth round wrote them) in /work/r18_s1, a clone of main with .venv a link to
# main's; the distilled and unlabelled presets with the teacher and the student at 300 px (this
# round's seed-2 recipe), and its teacher trained (dvc repro train_teacher). The pool run and
# labels alone at 300 px follow in the next round.
set -e
git clone -q /work/main /work/r18_s1
cd /work/r18_s1
ln -s /work/main/.venv .venv
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
sed 's/^  unlabelled_images: 0 /  unlabelled_images: 600 /' params.yaml > /work/round18/pool.yaml
sed 's/^  test_images: 200/  test_images: 1000/' params.yaml > /work/round18/big.yaml
grep -q "unlabelled_images: 600" /work/round18/pool.yaml && grep -q "test_images: 1000" /work/round18/big.yaml
python -m tools.make_benchmark_data --params /work/round18/pool.yaml --seed 1 --out data/hard_s1
python -m tools.make_benchmark_data --params /work/round18/big.yaml --seed 1 --out data/hard_s1_test1000
P=$(python -m tools.preset presets/distilled.yaml presets/unlabelled.yaml | sed 's/-S //g')
python /work/round18/set_params.py params.yaml $P teacher.input_size=300 student.input_size=300 data.dir=data/hard_s1
diff <(grep -v "^  dir: data/hard_s" /work/r18b_s2/params.yaml) <(grep -v "^  dir: data/hard_s" params.yaml) && echo "params: as /work/r18b_s2's but data.dir"
dvc repro train_teacher
md5sum models/teacher/*
cat metrics/teacher.json
