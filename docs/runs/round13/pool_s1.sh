# As run in the thirteenth round (docs/benchmark.md), with this machine's paths: /work/r13p and
# /work/r13s1 are workspaces at commit a09d50b's code, /work/stamp.py prefixes each line with its
# seconds since the start, probe_unlabelled.py is docs/runs/round9/probe_unlabelled.py copied in.
# Before it, by hand: the pool made as the ninth round's commands say (make_pool.py 1 600, into
# data/hard_s1_pool). It waits for seed 1's teacher run (dvc exp run -n pt32_s1) to end.
set -e
cd /work/r13s1
source /work/main/.venv/bin/activate
while pgrep -f "exp run -n pt32_s1" > /dev/null; do sleep 20; done
grep -q "dir: data/hard_s1 " params.yaml
sed -i 's#^  dir: data/hard_s1        #  dir: data/hard_s1_pool   #; /^student:/,/^distillation:/ s/^  epochs_finetune: .*/  epochs_finetune: 8/; /^student:/,/^distillation:/ s/^  early_stopping_patience: .*/  early_stopping_patience: 32/' params.yaml
cp params.yaml /work/round13/pool_pt32_s1.params.yaml
md5sum models/teacher/*
python -m stages.prepare
python -m stages.shards
python probe_unlabelled.py 600 stages.train_student
python probe_unlabelled.py 600 stages.qat
for s in export thresholds evaluate ptq_baseline compare_quantization package; do python -m stages.$s; done
python -m tools.score_package outputs/run_001 data/hard_s1_test1000
cp -a outputs/run_001 /work/r11_pkgs/pool_pt32_s1
