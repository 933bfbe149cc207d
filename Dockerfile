# CPU image by default; `--build-arg VARIANT=gpu` adds TensorFlow's CUDA libraries (NVIDIA GPU
# hosts, run with --gpus all). Not built or run on the team's machines, which have no Docker
# engine: see README.
FROM python:3.11-slim
ARG VARIANT=cpu
RUN apt-get update && apt-get install -y --no-install-recommends git gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && if [ "$VARIANT" = gpu ]; then pip install --no-cache-dir "tensorflow[and-cuda]==2.21.0"; fi
COPY . .
# The seed's usage: mount the dataset at /data/dataset and an output folder at /out.
CMD ["python", "-m", "stages.cli", "train", "--data_dir", "/data/dataset", \
     "--out_dir", "/out/run_001", "--config", "/app/params.yaml", "--work_dir", "/out/work"]
