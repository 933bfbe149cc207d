# As run in the fourteenth round (docs/benchmark.md), with this machine's paths: /work/ws2 and /work/ws2b
# are git clones of main (ws2b with data/hard_s2, hard_s2_test1000 and ws2's models/teacher copied in),
# /work/stamp.py prefixes each line with its seconds since the start.
# Labels alone with 24 epochs (the pool run's extra teacher passes and QAT images, about 8
# labels-only epochs here, given to the labels), beside a second pool run started at the same
# moment: same contention, so the two wall times compare. Same workspace as labels16_s2.sh.
set -e
cd /work/ws2b
source .venv/bin/activate
git log --oneline | head -1
python /work/round14/set_params.py params.yaml student.epochs_finetune=24
git diff params.yaml | grep "^[-+] " || true
for s in train_student qat export thresholds evaluate ptq_baseline compare_quantization package; do python -m stages.$s; done
cp -a outputs/run_001 /work/round14/pkg_l24_s2
