# The nineteenth round's seed-1 pair, one after the other, each alone: wait for the teacher, then
# the pool run, then labels alone.
while pgrep -f resume_teacher_s1.sh >/dev/null; do sleep 20; done
S=/work/main/tools/time_to_quality.py
P=/work/main/.venv/bin/python
bash /work/round19/s300_pool_s1.sh 2>&1 | $P $S stamp > /work/round19/s300_pool_s1.log
bash /work/round19/s300_labels_s1.sh 2>&1 | $P $S stamp > /work/round19/s300_labels24_s1.log
