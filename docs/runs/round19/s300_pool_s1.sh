# As run in the nineteenth round (docs/benchmark.md), with this machine's paths: /work/r18_s1 after
# docs/runs/round18/teacher300_s1.sh (finished by resume_teacher_s1.sh): seed 1, 600 images
# without labels, the distilled, unlabelled and 300 px presets (teacher and student at 300 px),
# its 300 px teacher trained. The rest of the pipeline, alone on the machine.
set -e
cd /work/r18_s1
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
git status --short
dvc status train_teacher
md5sum models/teacher/*
dvc repro
md5sum models/teacher/*
python -m tools.score_package outputs/run_001 data/hard_s1_test1000
cp -a outputs/run_001 /work/round19/pkg_s300pool_s1
