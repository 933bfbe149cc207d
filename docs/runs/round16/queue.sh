# The round's runs one at a time, each alone on the machine, so their wall times compare.
R=/work/round16
S="python /work/stamp.py"
while pgrep -f teacher32_s2.sh > /dev/null; do sleep 10; done
grep -q "models/teacher" $R/teacher32_s2.log || { echo "teacher s2 failed"; exit 1; }
rm -rf /work/s2b /work/s2c && cp -a /work/s2 /work/s2b && cp -a /work/s2 /work/s2c
bash $R/pool1800_s2.sh 2>&1 | $S > $R/pool1800_s2.log
echo queue done
