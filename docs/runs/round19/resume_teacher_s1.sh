# Resumes seed 1's 300 px teacher (docs/runs/round18/teacher300_s1.sh), killed at the end of the
# eighteenth round's session after fine-tune epoch 15 of 32; dvc repro resumes from the last
# finished epoch (models/checkpoints/finetune_backup).
set -e
cd /work/r18_s1
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
dvc repro train_teacher
md5sum models/teacher/*
cat metrics/teacher.json
