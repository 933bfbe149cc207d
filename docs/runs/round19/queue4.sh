# The QAT probe: pool, then labels, each alone, then the paired score.
S=/work/main/tools/time_to_quality.py
P=/work/main/.venv/bin/python
bash /work/round19/qat2_s2_seed7.sh pool 2>&1 | $P $S stamp > /work/round19/qat2_pool_s2_seed7.log
bash /work/round19/qat2_s2_seed7.sh labels 2>&1 | $P $S stamp > /work/round19/qat2_labels_s2_seed7.log
cd /work/main && $P -m tools.score_package /work/round19/pkg_qat2pool_s2_seed7 /work/r18c_s2/data/hard_s2_test1000 --against /work/round19/pkg_qat2labels_s2_seed7 > /work/round19/score_qat2_pool_vs_labels_s2_seed7.txt 2>&1
