# As run in the fourteenth round (docs/benchmark.md), with this machine's paths: /work/ws2 and /work/ws2b
# are git clones of main (ws2b with data/hard_s2, hard_s2_test1000 and ws2's models/teacher copied in),
# /work/stamp.py prefixes each line with its seconds since the start.
# The pool as a pipeline option, the user's way: data/hard_s2 rewritten with 600 images without
# labels (make_benchmark_data, benchmark_data.unlabelled_images: 600; train/val/test byte-identical),
# the teacher stage of the run before kept (dvc commit after the code update), then dvc repro.
# /work/ws2_data_hard_s2_pool was written before with python -m tools.make_benchmark_data
# --params pool.yaml --seed 2 (params.yaml with benchmark_data.unlabelled_images: 600).
# This first start was stopped: `dvc status train_teacher` looks at that stage alone, not at
# shards above it (pool_s2_resume.sh checks --with-deps), and shards' bytes had changed.
set -e
cd /work/ws2
source .venv/bin/activate
lscpu | grep -E "Model name|CPU family|^Model:"
git log --oneline | head -1
P="teacher.architecture=efficientnet_lite2 teacher.input_size=260 teacher.weights=imagenet teacher.epochs_head=1 teacher.lr_head=0.01 teacher.epochs_finetune=14 teacher.lr_finetune=0.003 teacher.unfreeze_fraction=0.8 teacher.train_batchnorm=true teacher.lr_schedule=cosine teacher.warmup_epochs=1 teacher.label_smoothing=0.1 teacher.weight_decay=0.05 teacher.early_stopping_monitor=val_f1_macro teacher.early_stopping_patience=20 student.epochs_head=1 student.lr_head=0.01 student.epochs_finetune=16 student.lr_finetune=0.003 student.unfreeze_fraction=0.8 student.train_batchnorm=true student.lr_schedule=cosine student.warmup_epochs=1 student.label_smoothing=0.1 student.weight_decay=0.05 student.early_stopping_monitor=val_f1_macro distillation.alpha=0.7 distillation.teacher_passes=8 distillation.if_teacher_not_better=warn qat.epochs=1 export.representative_samples=50 augmentation.random_flip_horizontal=false augmentation.random_zoom_factor=0.25 augmentation.random_rotation_factor=0.05 threshold_search.adoption_check=cross_validated teacher.epochs_finetune=32 teacher.early_stopping_patience=32 data.dir=data/hard_s2"
python /work/round14/set_params.py params.yaml $P student.epochs_finetune=8 student.early_stopping_patience=32 distillation.use_unlabelled=true
git diff --stat params.yaml
rm -rf data/hard_s2 && cp -r /work/ws2_data_hard_s2_pool data/hard_s2
dvc commit -f import_imagenet_weights train_teacher
dvc status
dvc repro unlabelled_images import_imagenet_weights
# the teacher must still be cached: prepare and shards gave the same outputs
dvc status train_teacher | tee /dev/stderr | grep -q "up to date" || { echo "the teacher would train again: stopped"; exit 1; }
dvc repro
python -m tools.score_package outputs/run_001 data/hard_s2_test1000
cp -a outputs/run_001 /work/round14/pkg_pool_s2
