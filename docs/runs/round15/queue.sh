# The round's runs one at a time, each alone on the machine, so their wall times compare.
R=/work/round15
S="python /work/stamp.py"
while pgrep -f teacher32_s1.sh > /dev/null; do sleep 10; done
grep -q "models/teacher" $R/teacher32_s1.log || { echo "teacher s1 failed"; exit 1; }
rm -rf /work/s1b /work/s1c && cp -a /work/s1 /work/s1b && cp -a /work/s1 /work/s1c
bash $R/pool_s1.sh 2>&1 | $S > $R/pool_s1.log
bash $R/labels24_s1.sh 2>&1 | $S > $R/labels24_s1.log
bash $R/teacher32_s2.sh 2>&1 | $S > $R/teacher32_s2.log
grep -q "models/teacher" $R/teacher32_s2.log || { echo "teacher s2 failed"; exit 1; }
rm -rf /work/s2b /work/s2c && cp -a /work/s2 /work/s2b && cp -a /work/s2 /work/s2c
bash $R/pool_s2.sh 2>&1 | $S > $R/pool_s2.log
bash $R/labels24_s2.sh 2>&1 | $S > $R/labels24_s2.log
bash $R/labels16_s1.sh 2>&1 | $S > $R/labels16_s1.log
bash $R/labels16_s2.sh 2>&1 | $S > $R/labels16_s2.log
echo queue done
