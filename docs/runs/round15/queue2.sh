# The rest of queue.sh (stopped while seed 2's teacher trained, to add labels32_s1.sh), one at a time.
R=/work/round15
S="python /work/stamp.py"
while pgrep -f teacher32_s2.sh > /dev/null; do sleep 10; done
grep -q "models/teacher" $R/teacher32_s2.log || { echo "teacher s2 failed"; exit 1; }
rm -rf /work/s2b /work/s2c && cp -a /work/s2 /work/s2b && cp -a /work/s2 /work/s2c
bash $R/pool_s2.sh 2>&1 | $S > $R/pool_s2.log
bash $R/labels24_s2.sh 2>&1 | $S > $R/labels24_s2.log
rm -rf /work/s1d && cp -a /work/s1c /work/s1d
bash $R/labels32_s1.sh 2>&1 | $S > $R/labels32_s1.log
bash $R/labels16_s1.sh 2>&1 | $S > $R/labels16_s1.log
bash $R/labels16_s2.sh 2>&1 | $S > $R/labels16_s2.log
echo queue done
