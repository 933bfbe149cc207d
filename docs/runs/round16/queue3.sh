# Replaced queue2.sh once the seed-2 pool run's time showed there was no time left for seed 1:
# after the labels-only run, the fifteenth round's pool run (600 images) on this machine.
R=/work/round16
S="python /work/stamp.py"
while pgrep -f "labels_s2.sh" > /dev/null; do sleep 10; done
bash $R/pool600_s2.sh 2>&1 | $S > $R/pool600_s2.log
echo queue3 done
