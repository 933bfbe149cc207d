# After queue.sh (seed 2's teacher and pool run): seed 2's labels-only run, then seed 1's teacher,
# pool run and labels-only run, one at a time. The labels-only epochs are read from the file N,
# written once the seed-2 pool run's stage times were known.
R=/work/round16
S="python /work/stamp.py"
while pgrep -f "queue.sh" > /dev/null; do sleep 10; done
grep -q "queue done" $R/queue.log || { echo "queue.sh failed"; exit 1; }
while [ ! -s $R/N ]; do sleep 10; done
N=$(cat $R/N)
bash $R/labels_s2.sh $N 2>&1 | $S > $R/labels${N}_s2.log
bash $R/teacher32_s1.sh 2>&1 | $S > $R/teacher32_s1.log
grep -q "models/teacher" $R/teacher32_s1.log || { echo "teacher s1 failed"; exit 1; }
rm -rf /work/s1b /work/s1c && cp -a /work/s1 /work/s1b && cp -a /work/s1 /work/s1c
bash $R/pool1800_s1.sh 2>&1 | $S > $R/pool1800_s1.log
bash $R/labels_s1.sh $N 2>&1 | $S > $R/labels${N}_s1.log
echo queue2 done
