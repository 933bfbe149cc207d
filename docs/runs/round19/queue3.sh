# After queue2.sh: seed 1's 300 px teacher on the 1000 test images.
while pgrep -f round19/queue2.sh >/dev/null; do sleep 20; done
cd /work/main && .venv/bin/python docs/runs/round19/teacher_test_s1.py > /work/round19/teacher_test_s1.txt 2>&1
