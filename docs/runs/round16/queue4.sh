# After queue3.sh: labels alone at 28 epochs, the pool-1 800 run's time (its student stage and
# QAT, 1 068 s) at the 34-epoch run's measured 33 s an epoch, the unused teacher passes not counted.
R=/work/round16
S="python /work/stamp.py"
while pgrep -f "queue3.sh" > /dev/null; do sleep 10; done
bash $R/labels_s2.sh 28 2>&1 | $S > $R/labels28_s2.log
echo queue4 done
