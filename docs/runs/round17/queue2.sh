# Started beside the last quarter of seedsched_s1.sh (whose wall time is not compared), to fit
# the session: the teacher at 300 px and its pool run on seed 2.
R=/work/round17
bash $R/t300_s2.sh 2>&1 | python /work/stamp.py > $R/t300_s2.log
echo queue2 done
