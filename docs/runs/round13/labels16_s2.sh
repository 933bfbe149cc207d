# As run in the thirteenth round (docs/benchmark.md), with this machine's paths: /work/r13p and
# /work/r13s1 are workspaces at commit a09d50b's code, /work/stamp.py prefixes each line with its
# seconds since the start, probe_unlabelled.py is docs/runs/round9/probe_unlabelled.py copied in.
set -e
cd /work/r13p
source /work/main/.venv/bin/activate
sed -i 's#^  dir: data/hard_s2_pool   #  dir: data/hard_s2        #; /^student:/,/^distillation:/ s/^  epochs_finetune: 8/  epochs_finetune: 16/; /^distillation:/,/^qat:/ s/^  alpha: 0.7$/  alpha: 1.0/' params.yaml
grep -q "^  alpha: 1.0$" params.yaml && grep -q "dir: data/hard_s2  " params.yaml
cp params.yaml /work/round13/labels16_s2.params.yaml
diff /work/round13/pool_pt32_s2.params.yaml params.yaml || true
python -m stages.prepare
python -m stages.shards
python -m stages.train_student
python -m stages.qat
for s in export thresholds evaluate ptq_baseline compare_quantization package; do python -m stages.$s; done
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/r11_pkgs/l16_s2
