# CPU image by default; `--build-arg VARIANT=gpu` adds TensorFlow's CUDA libraries (NVIDIA GPU
# hosts, run with --gpus all). BASE is any Debian-based image with Python 3.11 and its venv
# module: python:3.11-slim for users; CI, which cannot reach that registry, builds the same from
# Debian bookworm's packages (scripts/build_image.sh).
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG VARIANT=cpu
RUN apt-get update && apt-get install -y --no-install-recommends git gcc libc6-dev make \
    && rm -rf /var/lib/apt/lists/*
# The project's packages live in a virtual environment: Debian's python3 is externally managed
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && if [ "$VARIANT" = gpu ]; then pip install --no-cache-dir "tensorflow[and-cuda]==2.21.0"; fi
COPY . .
# The seed's usage: mount the dataset at /data/dataset and an output folder at /out.
CMD ["python", "-m", "tools.cli", "train", "--data_dir", "/data/dataset", \
     "--out_dir", "/out/run_001", "--config", "/app/params.yaml", "--work_dir", "/out/work"]
