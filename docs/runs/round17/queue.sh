# The round's runs one after the other. seedsched_s2.sh was started by hand before it, and both
# seed-2 runs ran alone; seed 1's ran beside the test suite, then beside t300_s2.sh (queue2.sh).
R=/work/round17
while pgrep -f seedsched_s2.sh > /dev/null; do sleep 10; done
bash $R/baseline_s2.sh 2>&1 | python /work/stamp.py > $R/baseline_s2.log
bash $R/seedsched_s1.sh 2>&1 | python /work/stamp.py > $R/seedsched_s1.log
echo queue done
