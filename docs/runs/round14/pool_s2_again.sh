# As run in the fourteenth round (docs/benchmark.md), with this machine's paths: /work/ws2 and /work/ws2b
# are git clones of main (ws2b with data/hard_s2, hard_s2_test1000 and ws2's models/teacher copied in),
# /work/stamp.py prefixes each line with its seconds since the start.
# The pool run again, unchanged (dvc repro -f from the student stage on: the teacher stays
# cached), beside labels24_s2.sh started at the same moment: its wall time under the same
# contention, and whether the run reproduces.
set -e
cd /work/ws2
source .venv/bin/activate
git log --oneline | head -1
dvc repro -f -s train_student
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round14/pkg_pool_s2
cp -a outputs/run_001 /work/round14/pkg_pool_s2_again
