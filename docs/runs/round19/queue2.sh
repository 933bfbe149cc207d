# After queue.sh: seed 2's pair at 300 px with training seed 7, each alone, then the paired score.
while pgrep -f round19/queue.sh >/dev/null; do sleep 20; done
S=/work/main/tools/time_to_quality.py
P=/work/main/.venv/bin/python
bash /work/round19/s300_pair_s2_seed7.sh pool 2>&1 | $P $S stamp > /work/round19/s300_pool_s2_seed7.log
bash /work/round19/s300_pair_s2_seed7.sh labels 2>&1 | $P $S stamp > /work/round19/s300_labels24_s2_seed7.log
cd /work/main && $P -m tools.score_package /work/round19/pkg_s300pool_s2_seed7 /work/r18c_s2/data/hard_s2_test1000 --against /work/round19/pkg_s300labels_s2_seed7 > /work/round19/score_pool_vs_labels_s2_seed7.txt 2>&1
