# As run in the thirteenth round (docs/benchmark.md), with this machine's paths: /work/r13p and
# /work/r13s1 are workspaces at commit a09d50b's code, /work/stamp.py prefixes each line with its
# seconds since the start, probe_unlabelled.py is docs/runs/round9/probe_unlabelled.py copied in.
# Before it, by hand: the pool made as the ninth round's commands say (make_pool.py 2 600, into
# data/hard_s2_pool), and params.yaml's data.dir set to data/hard_s2_pool and
# student.epochs_finetune from 16 to 8 (student.early_stopping_patience was 32 already).
set -e
cd /work/r13p
source /work/main/.venv/bin/activate
md5sum models/teacher/* | head -5
python -m stages.prepare
python -m stages.shards
python probe_unlabelled.py 600 stages.train_student
python probe_unlabelled.py 600 stages.qat
for s in export thresholds evaluate ptq_baseline compare_quantization package; do python -m stages.$s; done
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
