# As run in the fourteenth round (docs/benchmark.md), with this machine's paths: /work/ws2 and /work/ws2b
# are git clones of main (ws2b with data/hard_s2, hard_s2_test1000 and ws2's models/teacher copied in),
# /work/stamp.py prefixes each line with its seconds since the start.
set -e
cd /work/ws2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
dvc exp run -n pt32_s2 -S teacher.architecture=efficientnet_lite2 -S teacher.input_size=260 -S teacher.weights=imagenet -S teacher.epochs_head=1 -S teacher.lr_head=0.01 -S teacher.epochs_finetune=14 -S teacher.lr_finetune=0.003 -S teacher.unfreeze_fraction=0.8 -S teacher.train_batchnorm=true -S teacher.lr_schedule=cosine -S teacher.warmup_epochs=1 -S teacher.label_smoothing=0.1 -S teacher.weight_decay=0.05 -S teacher.early_stopping_monitor=val_f1_macro -S teacher.early_stopping_patience=20 -S student.epochs_head=1 -S student.lr_head=0.01 -S student.epochs_finetune=16 -S student.lr_finetune=0.003 -S student.unfreeze_fraction=0.8 -S student.train_batchnorm=true -S student.lr_schedule=cosine -S student.warmup_epochs=1 -S student.label_smoothing=0.1 -S student.weight_decay=0.05 -S student.early_stopping_monitor=val_f1_macro -S distillation.alpha=0.7 -S distillation.teacher_passes=8 -S distillation.if_teacher_not_better=warn -S qat.epochs=1 -S export.representative_samples=50 -S augmentation.random_flip_horizontal=false -S augmentation.random_zoom_factor=0.25 -S augmentation.random_rotation_factor=0.05 -S threshold_search.adoption_check=cross_validated -S teacher.epochs_finetune=32 -S teacher.early_stopping_patience=32 -S data.dir=data/hard_s2 train_teacher
md5sum models/teacher/*
