# As run in the fourteenth round (docs/benchmark.md), with this machine's paths: /work/ws2 and /work/ws2b
# are git clones of main (ws2b with data/hard_s2, hard_s2_test1000 and ws2's models/teacher copied in),
# /work/stamp.py prefixes each line with its seconds since the start.
# After pool_s2.sh was stopped (its dvc repro began training the teacher again: the shards'
# bytes differed between runs, fixed in c0ec9cd): code pulled, models/teacher checked out
# from the cache, shards written again (same records as the teacher's: same_records.py),
# the teacher's stage committed, then the rest of the pipeline.
set -e
cd /work/ws2
source .venv/bin/activate
git log --oneline | head -1
dvc commit -f import_imagenet_weights train_teacher
dvc status --with-deps train_teacher | tee /dev/stderr | grep -q "up to date" || { echo "the teacher would train again: stopped"; exit 1; }
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/round14/pkg_pool_s2
