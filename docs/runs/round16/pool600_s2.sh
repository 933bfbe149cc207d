# As run in the sixteenth round (docs/benchmark.md), with this machine's paths: /work/s2b, a copy
# of /work/s2 after teacher32_s2.sh. The fifteenth round's pool run on this machine: the first
# 600 of the 1 800 images without labels (the generator draws them in order from one stream, so
# they are the fifteenth round's 600), 8 teacher passes and 8 fine-tune epochs over the 1 200.
set -e
cd /work/s2b
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
head -600 data/hard_s2/unlabelled.txt > /tmp/first600.txt
for name in $(tail -n +601 data/hard_s2/unlabelled.txt); do rm data/hard_s2/images/$name; done
mv /tmp/first600.txt data/hard_s2/unlabelled.txt
wc -l data/hard_s2/unlabelled.txt; ls data/hard_s2/images | grep -c "^unlabelled_"
python /work/round16/set_params.py params.yaml student.epochs_finetune=8 distillation.use_unlabelled=true
git diff params.yaml | grep "^[-+] " || true
# the dataset folder changed (unlabelled.txt and the images it no longer lists), so prepare and
# shards run again first; their outputs must be the same bytes, leaving the teacher cached
dvc repro shards
dvc status train_teacher --with-deps | tee /dev/stderr | grep -q "up to date" || { echo "the teacher would train again: stopped"; exit 1; }
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/round16/pkg_pool600_s2
