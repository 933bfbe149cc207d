# As run in the fourteenth round (docs/benchmark.md), with this machine's paths: /work/ws2 and /work/ws2b
# are git clones of main (ws2b with data/hard_s2, hard_s2_test1000 and ws2's models/teacher copied in),
# /work/stamp.py prefixes each line with its seconds since the start.
# The pool run with four teacher passes over the 1 200 images instead of eight: the teacher's
# work then equals the labels-only runs' (8 passes over 600). Alone on the machine.
set -e
cd /work/ws2
source .venv/bin/activate
git log --oneline | head -1
python /work/round14/set_params.py params.yaml distillation.teacher_passes=4
git diff params.yaml | grep "teacher_passes" || true
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round14/pkg_l24_s2
python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round14/pkg_l16_s2
cp -a outputs/run_001 /work/round14/pkg_pool4_s2
