"""Peak memory of prepare, shards and one training epoch on synthetic datasets of several
sizes: memory must not grow with the number of images beyond the shuffle buffer (bounded) and
a few hundred bytes of metadata per image (names, labels, hashes).

    python -m tools.benchmark_memory [--images 2500 10000] [--out metrics/memory.json]

Each step runs in its own process (the real stage scripts for prepare and shards), and its peak
resident memory is read from the kernel (getrusage of the finished child). The epoch is the
student's head phase over the streamed shards: decode, augment, train, batch 32.
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run by path, not with -m: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from stages.common.core import layout
from stages.common.core.command_line import stage_parser, stage_process_env
from stages.common.core.errors import run_main
from stages.common.core.json_files import write_json
from stages.common.core.machine import machine
from stages.common.core.params import load_params, read_params
from stages.common.core.params_schema import Params
from stages.common.core.yaml_files import write_yaml

REPO = Path(__file__).resolve().parents[1]
PEAK_OF_CHILD = ("import resource, subprocess, sys; "
                 "code = subprocess.run(sys.argv[1:]).returncode; "
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def peak_memory(command: list[str], cwd: Path) -> tuple[float, float]:
    """(peak resident MB, seconds) of a command run in a fresh process."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PEAK_OF_CHILD, *command], cwd=cwd,
                            capture_output=True, text=True, env=stage_process_env())
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    peak_kb = int(result.stdout.strip().splitlines()[-1])
    return round(peak_kb / 1024, 1), round(time.monotonic() - started, 1)


def one_epoch(params_file: str, shards_dir: str) -> None:
    """The student's head phase for one epoch on the streamed shards, with the params' shuffle
    buffer, augmentation and dropout (runs in a child)."""
    import tensorflow as tf

    from stages.common.data.augmentation import Augmentation
    from stages.common.data.input_pipeline import make_dataset
    from stages.common.data.tfrecord_shards import Shards
    from stages.common.models.architectures import build_student
    from stages.common.models.freezing import set_trainable

    params = load_params(params_file)
    shards = Shards.open(shards_dir)
    data = make_dataset(
        shards.records("train", ["student"], shuffle_buffer=params.shards.shuffle_buffer, seed=0),
        ["student"], 32, training=True, seed=0,
        augmentation=Augmentation.from_params(params.augmentation))
    model = build_student(len(shards.manifest["classes"]), shards.size("student"),
                          params.student.dropout)
    set_trainable(model, "head")
    model.compile(optimizer=tf.keras.optimizers.AdamW(1e-3),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(data, epochs=1, verbose=0)


def measure(images: int, folder: Path) -> dict:
    from stages.common.data.demo_data import write_demo_dataset

    started = time.monotonic()
    data_dir = folder / "data"
    write_demo_dataset(data_dir, {"train": images, "val": 64, "test": 64}, seed=1)
    generated = round(time.monotonic() - started, 1)
    params = read_params(REPO / "params.yaml")  # a mapping: changed and written for the stages
    params["data"]["dir"] = str(data_dir)
    shuffle_buffer = Params.from_dict(params).shards.shuffle_buffer
    params_file = folder / "params.yaml"
    write_yaml(params_file, params)
    prepare = peak_memory([sys.executable, "-m", "stages.prepare", "--params",
                           str(params_file), "--out", str(folder / "prepared"), "--report",
                           str(folder / "report.json")], folder)
    shards = peak_memory([sys.executable, "-m", "stages.shards", "--params",
                          str(params_file), "--prepared", str(folder / "prepared"), "--out",
                          str(folder / "shards")], folder)
    epoch = peak_memory([sys.executable, "-m", "tools.benchmark_memory", "epoch",
                         str(params_file), str(folder / "shards")], folder)
    disk = sum(path.stat().st_size for path in (folder / "shards").glob("*.tfrecord"))
    return {"train_images": images, "generate_s": generated,
            "prepare": {"peak_mb": prepare[0], "seconds": prepare[1]},
            "shards": {"peak_mb": shards[0], "seconds": shards[1], "disk_mb": round(disk / 1e6, 1)},
            "student_epoch": {"peak_mb": epoch[0], "seconds": epoch[1]},
            "shuffle_buffer": shuffle_buffer}


def main() -> None:
    if sys.argv[1:2] == ["epoch"]:
        one_epoch(sys.argv[2], sys.argv[3])
        return
    parser = stage_parser(__doc__, params=False)
    parser.add_argument("--images", type=int, nargs="+", default=[2500, 10000])
    parser.add_argument("--out", type=Path, default=layout.MEMORY)
    args = parser.parse_args()
    results = []
    for images in args.images:
        with tempfile.TemporaryDirectory(prefix="memory_") as folder:
            results.append(measure(images, Path(folder)))
        row = results[-1]
        print(f"{images} training images: prepare {row['prepare']['peak_mb']} MB "
              f"({row['prepare']['seconds']} s), shards {row['shards']['peak_mb']} MB "
              f"({row['shards']['seconds']} s, {row['shards']['disk_mb']} MB on disk), one student "
              f"epoch {row['student_epoch']['peak_mb']} MB ({row['student_epoch']['seconds']} s)",
              flush=True)
    measured_on = machine()
    print(f"CPU: {measured_on['cpu_model']} ({measured_on['cpu_count']} cores)")
    write_json(args.out, {"machine": measured_on, "runs": results})


if __name__ == "__main__":
    run_main(main)
