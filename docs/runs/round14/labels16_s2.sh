# As run in the fourteenth round (docs/benchmark.md), with this machine's paths: /work/ws2 and /work/ws2b
# are git clones of main (ws2b with data/hard_s2, hard_s2_test1000 and ws2's models/teacher copied in),
# /work/stamp.py prefixes each line with its seconds since the start.
# Labels alone at the same steps (16 epochs over the 600 labelled images), the same teacher
# (copied in: its passes are still computed), stages run by hand in dvc.yaml's order.
set -e
cd /work/ws2b
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
P="teacher.architecture=efficientnet_lite2 teacher.input_size=260 teacher.weights=imagenet teacher.epochs_head=1 teacher.lr_head=0.01 teacher.epochs_finetune=14 teacher.lr_finetune=0.003 teacher.unfreeze_fraction=0.8 teacher.train_batchnorm=true teacher.lr_schedule=cosine teacher.warmup_epochs=1 teacher.label_smoothing=0.1 teacher.weight_decay=0.05 teacher.early_stopping_monitor=val_f1_macro teacher.early_stopping_patience=20 student.epochs_head=1 student.lr_head=0.01 student.epochs_finetune=16 student.lr_finetune=0.003 student.unfreeze_fraction=0.8 student.train_batchnorm=true student.lr_schedule=cosine student.warmup_epochs=1 student.label_smoothing=0.1 student.weight_decay=0.05 student.early_stopping_monitor=val_f1_macro distillation.alpha=0.7 distillation.teacher_passes=8 distillation.if_teacher_not_better=warn qat.epochs=1 export.representative_samples=50 augmentation.random_flip_horizontal=false augmentation.random_zoom_factor=0.25 augmentation.random_rotation_factor=0.05 threshold_search.adoption_check=cross_validated teacher.epochs_finetune=32 teacher.early_stopping_patience=32 data.dir=data/hard_s2"
python /work/round14/set_params.py params.yaml $P student.epochs_finetune=16 student.early_stopping_patience=32 distillation.alpha=1.0
git diff params.yaml | grep "^[-+] " || true
md5sum models/teacher/*
for s in prepare shards unlabelled_images train_student qat export thresholds evaluate ptq_baseline compare_quantization package; do python -m stages.$s; done
python -m tools.score_package outputs/run_001 data/hard_s2_test1000 --against /work/round14/pkg_pool_s2 || true
cp -a outputs/run_001 /work/round14/pkg_l16_s2
