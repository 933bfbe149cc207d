"""The phone's side in C (stages/c_reference/classify): built with warnings as errors, run
through the LiteRT C API of the installed wheel, and compared with the Python side byte for byte;
also cross-compiled for 64-bit ARM and run under qemu-user as two phone CPU kinds.

The packaged model is the session's small one (the ``workspace`` fixture: thresholds, evaluate
and package have run on it). A missing C compiler fails these tests: the phone path is a
promise, not an option.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.c_app import (
    C_DIR,
    compiler,
    make,
    sanitizers_work,
    split_paths,
    varied_images,
)
from PIL import Image

from stages.common.data.image_files import encode_ppm
from stages.common.data.preprocessing import decode_image, letterbox
from stages.common.data.tfrecord_shards import Shards
from stages.common.deployment.predictor import Predictor
from stages.common.quantization.int8_outputs import int8_outputs
from stages.common.quantization.int8_runtime import Int8Model, int8_threshold, probability_table

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """{"plain": path, "sanitized": path or None} of the C app, built by its Makefile."""
    compiler()
    out = tmp_path_factory.mktemp("c_app")
    make("all", out)
    built = {"plain": out / "classify", "sanitized": None}
    if sanitizers_work(out):
        make("sanitized", out)
        built["sanitized"] = out / "classify-sanitized"
    return built


def _classify(app: Path, output_dir: Path, *images) -> subprocess.CompletedProcess:
    """One plain run of the app (no options), its output as text."""
    return subprocess.run([str(app), str(output_dir), *map(str, images)], capture_output=True,
                          text=True)


def run_app(app: Path, output_dir: Path, images: list[Path], *options: str, runner=()):
    """(exit status, {image: (labels, int8 outputs) or ("error", message)}, stderr) of one run
    with --int8; `runner` is a command prefix the app runs under (an emulator)."""
    result = subprocess.run([*runner, str(app), "--int8", *options, str(output_dir),
                             *map(str, images)], capture_output=True, text=True)
    found, lines = {}, result.stdout.splitlines()
    for line, following in zip(lines, lines[1:] + [""]):
        if line.startswith("  int8:"):
            continue
        image, _, rest = line.partition(": ")
        if rest.startswith("error: "):
            found[image] = ("error", rest.removeprefix("error: "))
            continue
        labels = (
            [] if rest == "(no label)" else [part.rsplit(" (", 1)[0] for part in rest.split(", ")]
        )
        assert following.startswith("  int8:"), result.stdout
        found[image] = (labels, [int(v) for v in following.removeprefix("  int8:").split()])
    return result.returncode, found, result.stderr


@pytest.fixture(scope="module")
def phone_inputs(workspace, tmp_path_factory):
    """(output folder, original images, their PPMs written by tools/decode_to_ppm.py)."""
    root, dataset = workspace
    folder = tmp_path_factory.mktemp("phone")
    images = varied_images(dataset, folder)
    ppm_dir = folder / "ppm"
    ppm_dir.mkdir()
    result = subprocess.run([sys.executable, "-m", "tools.decode_to_ppm",
                             str(ppm_dir), *map(str, images)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return root / "outputs" / "run_001", images, [ppm_dir / (p.stem + ".ppm") for p in images]


def test_the_build_treats_warnings_as_errors(apps, tmp_path):
    flags = subprocess.run(["make", "-s", "-C", str(C_DIR), "print-cflags"], capture_output=True,
                           text=True, check=True).stdout.split()
    probe = tmp_path / "warning.c"
    probe.write_text("int main(void) { int unused; return 0; }\n")
    result = subprocess.run([compiler(), *flags, "-c", str(probe), "-o", str(tmp_path / "w.o")],
                            capture_output=True, text=True)
    assert result.returncode != 0, f"a warning did not stop the build with {' '.join(flags)}"
    assert "unused" in result.stderr


def test_decode_to_ppm_writes_the_decoded_pixels(phone_inputs):
    _, images, ppms = phone_inputs
    for image, ppm in zip(images, ppms):
        expected = decode_image(image.read_bytes())
        assert ppm.read_bytes() == encode_ppm(expected)
    rotated = Image.open(images[5])
    assert decode_image(images[5].read_bytes()).shape[:2] == rotated.size  # EXIF turned it upright


def test_c_outputs_equal_python_byte_for_byte_at_1_and_4_threads(apps, phone_inputs):
    output_dir, images, ppms = phone_inputs
    model = Int8Model.load(output_dir / "model_qat_int8.tflite")
    expected = model.raw_outputs(np.stack([letterbox(decode_image(p.read_bytes()), model.input_size)
                                           for p in images]))
    sizes = {decode_image(p.read_bytes()).shape[:2] for p in images}
    assert len(ppms) >= 50 and len(sizes) >= 50  # as many sizes and aspect ratios as images
    assert len({tuple(row) for row in expected}) >= 40  # outputs that depend on the image
    for threads in ("1", "4"):
        status, found, stderr = run_app(apps["plain"], output_dir, ppms, "--threads", threads)
        assert status == 0, stderr
        got = np.array([found[str(p)][1] for p in ppms], dtype=np.int8)
        np.testing.assert_array_equal(got, expected, err_msg=f"{threads} thread(s)")


def test_c_decisions_equal_predict_py(apps, phone_inputs):
    output_dir, images, ppms = phone_inputs
    result = subprocess.run([sys.executable, "-m", "tools.predict", str(output_dir),
                             *map(str, images), "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    python_labels = {Path(r["image"]).stem: [label["class"] for label in r["labels"]]
                     for r in json.loads(result.stdout)}
    status, found, stderr = run_app(apps["plain"], output_dir, ppms)
    assert status == 0, stderr
    assert {Path(image).stem: labels for image, (labels, _) in found.items()} == python_labels


def test_c_on_the_evaluation_split_gives_the_packaged_metrics(apps, workspace, tmp_path):
    """The test split's images, decoded and letterboxed by the C side, give the int8 outputs
    evaluate streamed from the shards, and the decisions give metrics.json's numbers."""
    root, dataset = workspace
    output_dir = root / "outputs" / "run_001"
    config = json.loads((output_dir / "inference_config.json").read_text())
    ppms = []
    for index, path in enumerate(split_paths(dataset, "test")):
        ppms.append(tmp_path / f"test_{index:03d}.ppm")
        ppms[-1].write_bytes(encode_ppm(decode_image(path.read_bytes())))
    status, found, stderr = run_app(apps["plain"], output_dir, ppms)
    assert status == 0, stderr
    c_outputs = np.array([found[str(p)][1] for p in ppms], dtype=np.int8)
    model = Int8Model.load(output_dir / "model_qat_int8.tflite")
    evaluated = int8_outputs(model, Shards.open(root / "data" / "shards", dataset), "test")
    np.testing.assert_array_equal(c_outputs, evaluated)
    thresholds = np.array([row["int8"] for row in config["thresholds"]["classes"]])
    decisions = np.array([[name in found[str(p)][0] for name in dataset.classes] for p in ppms])
    np.testing.assert_array_equal(decisions, c_outputs.astype(int) >= thresholds)
    targets = np.array(dataset.targets("test"), dtype=bool).reshape(-1, len(dataset.classes))
    # scikit-learn is the oracle (macro over the classes with a positive, zero_division=0), not
    # the pipeline's own multilabel_metrics, which wrote metrics.json
    from sklearn.metrics import f1_score, precision_score, recall_score

    present = np.nonzero(targets.any(axis=0))[0]
    expected = {
        "f1_macro": f1_score(targets, decisions, average="macro", labels=present, zero_division=0),
        "precision_macro": precision_score(targets, decisions, average="macro", labels=present,
                                           zero_division=0),
        "recall_macro": recall_score(targets, decisions, average="macro", labels=present,
                                     zero_division=0),
        "f1_micro": f1_score(targets, decisions, average="micro", zero_division=0),
    }
    metrics = json.loads((output_dir / "metrics.json").read_text())
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key


def _edge_output_folder(source: Path, target: Path, outputs: np.ndarray) -> np.ndarray:
    """A copy of ``source`` whose int8 thresholds sit exactly on observed outputs (the median
    image's, per class), so that ``>=`` against ``>`` or a threshold off by one shows."""
    shutil.copytree(source, target)
    config = json.loads((target / "inference_config.json").read_text())
    table = probability_table(config["output"]["quantization"]["scale"],
                              config["output"]["quantization"]["zero_point"])
    edges = np.sort(outputs.astype(int), axis=0)[len(outputs) // 2]
    for row, q in zip(config["thresholds"]["classes"], edges):
        row["int8"], row["probability"] = int(q), float(table[q + 128])
    (target / "inference_config.json").write_text(json.dumps(config, indent=2))
    return edges


def test_decisions_on_the_threshold_itself_agree(apps, phone_inputs, tmp_path):
    output_dir, images, ppms = phone_inputs
    _, found, _ = run_app(apps["plain"], output_dir, ppms)
    outputs = np.array([found[str(p)][1] for p in ppms])
    edges = _edge_output_folder(output_dir, tmp_path / "edge", outputs)
    assert np.any(outputs == edges)  # some images sit exactly on a threshold
    predictor = Predictor.load(tmp_path / "edge")
    expected = {str(ppm): [label["class"] for label in predictor.predict_file(image)["labels"]]
                for image, ppm in zip(images, ppms)}
    status, found, stderr = run_app(apps["plain"], tmp_path / "edge", ppms)
    assert status == 0, stderr
    assert {image: labels for image, (labels, _) in found.items()} == expected


def _ppm_size(ppm: Path) -> str:
    width, height = ppm.read_bytes().split(b"\n")[1].split()  # encode_ppm's header: P6, size, 255
    return f"{int(width)}x{int(height)}"


def test_sanitized_build_runs_clean(apps, phone_inputs):
    if apps["sanitized"] is None:
        pytest.skip("this compiler cannot build with AddressSanitizer and UBSan")
    output_dir, _, ppms = phone_inputs
    plain = run_app(apps["plain"], output_dir, ppms[:8])
    status, found, stderr = run_app(apps["sanitized"], output_dir, ppms[:8], "--threads", "2")
    assert status == 0 and "Sanitizer" not in stderr, stderr
    assert found == plain[1]
    # the error paths too: a missing image, a file that is not a PPM, a truncated PPM
    truncated = ppms[0].parent / "truncated.ppm"
    truncated.write_bytes(ppms[0].read_bytes()[:-7])
    status, found, stderr = run_app(apps["sanitized"], output_dir,
                                    [ppms[0], Path("missing.ppm"), REPO / "README.md", truncated])
    assert status == 1 and "Sanitizer" not in stderr, stderr
    assert found[str(ppms[0])] == plain[1][str(ppms[0])]
    assert found[str(truncated)] == ("error", f"holds fewer than {_ppm_size(ppms[0])} RGB pixels")


def test_builtin_kernels_equal_the_interpreters_builtin_kernels(apps, phone_inputs):
    output_dir, images, ppms = phone_inputs
    model = Int8Model.load(output_dir / "model_qat_int8.tflite", kernels="builtin")
    expected = model.raw_outputs(np.stack([letterbox(decode_image(p.read_bytes()), model.input_size)
                                           for p in images[:10]]))
    status, found, stderr = run_app(apps["plain"], output_dir, ppms[:10], "--kernels", "builtin")
    assert status == 0
    assert "thresholds were tuned on xnnpack kernels" in stderr  # said, not hidden
    np.testing.assert_array_equal(np.array([found[str(p)][1] for p in ppms[:10]]), expected)


def test_each_image_problem_is_its_own_line(apps, phone_inputs, tmp_path):
    output_dir, _, ppms = phone_inputs
    bad_header = tmp_path / "bad.ppm"
    bad_header.write_bytes(b"P6\n12 x\n255\n")
    sixteen_bit = tmp_path / "deep.ppm"
    sixteen_bit.write_bytes(b"P6\n1 1\n65535\n" + bytes(6))
    result = _classify(apps["plain"], output_dir, ppms[0], "missing.ppm", bad_header, sixteen_bit,
                       REPO / "README.md")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{ppms[0]}: ") and "error" not in lines[0]
    assert lines[1] == "missing.ppm: error: file not found"
    assert lines[2] == f"{bad_header}: error: the PPM header is damaged (P6, width, height, maxval)"
    assert (
        lines[3] == f"{sixteen_bit}: error: PPM maxval is 65535; only 8-bit PPM (255) is accepted"
    )
    assert lines[4].startswith(f"{REPO / 'README.md'}: error: not a binary PPM (P6)")


def test_raw_rgb_input_gives_the_ppm_result(apps, phone_inputs, tmp_path):
    output_dir, images, ppms = phone_inputs
    pixels = decode_image(images[0].read_bytes())
    raw = tmp_path / "image.rgb"
    raw.write_bytes(pixels.tobytes())
    height, width = pixels.shape[:2]
    _, from_raw, _ = run_app(apps["plain"], output_dir, [raw], "--raw", f"{width}x{height}")
    _, from_ppm, _ = run_app(apps["plain"], output_dir, [ppms[0]])
    assert from_raw[str(raw)] == from_ppm[str(ppms[0])]


def _requantised(config: dict, zero_point: int) -> None:
    """Another output zero point, with the int8 thresholds its probabilities then give (so that
    only the model disagrees with the config)."""
    config["output"]["quantization"]["zero_point"] = zero_point
    for row in config["thresholds"]["classes"]:
        row["int8"] = int8_threshold(row["probability"], config["output"]["quantization"]["scale"],
                                     zero_point)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c.pop("thresholds"), "field thresholds is missing"),
        (
            lambda c: c["thresholds"]["classes"][1].update(int8="12"),
            "field thresholds.classes[1].int8 must be an integer from -128 to 128",
        ),
        (lambda c: c["labels"]["classes"].pop(), "labels.classes has 4 and thresholds.classes 5"),
        (
            lambda c: c.update(format_version=2),
            "field format_version is 2; this reader knows version 1 only",
        ),
        (
            lambda c: c["input"].update(shape=[1, 32, 32, 3], height=32, width=32),
            "the input's dimension 1 is 64 (-1: dynamic), inference_config.json says 32",
        ),
        (
            lambda c: _requantised(c, c["output"]["quantization"]["zero_point"] + 1),
            "the output's quantisation is scale",
        ),
        (
            lambda c: c["model"].update(file="../model.tflite"),
            'field model.file is "../model.tflite"; '
            'this reader handles "model_qat_int8.tflite" only',
        ),
    ],
)
def test_a_config_that_does_not_fit_is_refused_by_field(
    apps, phone_inputs, tmp_path, change, expected
):
    output_dir, _, ppms = phone_inputs
    damaged = tmp_path / "damaged"
    shutil.copytree(output_dir, damaged)
    config = json.loads((damaged / "inference_config.json").read_text())
    change(config)
    (damaged / "inference_config.json").write_text(json.dumps(config))
    result = _classify(apps["plain"], damaged, ppms[0])
    assert result.returncode == 2 and result.stdout == ""
    assert expected in result.stderr, result.stderr


def test_broken_json_and_labels_name_the_file_and_line(apps, phone_inputs, tmp_path):
    output_dir, _, ppms = phone_inputs
    damaged = tmp_path / "damaged"
    shutil.copytree(output_dir, damaged)
    text = (damaged / "inference_config.json").read_text()
    (damaged / "inference_config.json").write_text(text.replace('"input": {', '"input": {,', 1))
    line = text[:text.index('"input": {')].count("\n") + 1
    result = _classify(apps["plain"], damaged, ppms[0])
    assert result.returncode == 2
    assert f"inference_config.json:{line}: invalid JSON" in result.stderr, result.stderr
    shutil.copyfile(output_dir / "inference_config.json", damaged / "inference_config.json")
    labels = (damaged / "labels.txt").read_text().splitlines()
    (damaged / "labels.txt").write_text("\n".join([labels[1], labels[0], *labels[2:]]) + "\n")
    result = _classify(apps["plain"], damaged, ppms[0])
    assert result.returncode == 2
    assert (
        "labels.txt: line 1 disagrees with inference_config.json field labels.classes"
        in result.stderr
    )
    (damaged / "labels.txt").write_text("\n".join(labels))  # no final newline: still the labels
    assert Predictor.load(damaged).classes == labels
    result = _classify(apps["plain"], damaged, ppms[0])
    assert result.returncode == 0, result.stderr
    (damaged / "labels.txt").write_text("\n".join(labels) + "\n\n")  # an extra, empty line
    result = _classify(apps["plain"], damaged, ppms[0])
    assert result.returncode == 2
    assert f"labels.txt: line {len(labels) + 1} disagrees" in result.stderr


@pytest.mark.parametrize("option, value", [
    ("--raw", "4294967297x1"), ("--raw", "1x4294967297"), ("--raw", "99999999999999999999x1"),
    ("--raw", "-1x5"), ("--raw", "+5x5"), ("--raw", " 5x5"), ("--raw", "5x5x"), ("--raw", "5x"),
    ("--raw", "0x5"), ("--threads", "4294967297"), ("--threads", "-1"), ("--threads", "2x"),
    ("--repeat", "18446744073709551617"), ("--repeat", " 3"),
])
def test_numbers_in_options_are_checked_whole_and_for_overflow(apps, phone_inputs, option, value):
    """sscanf("%d") read 4294967297x1 as 1x1; each number is now digits only, range-checked
    before it can overflow."""
    output_dir, _, ppms = phone_inputs
    result = subprocess.run([str(apps["plain"]), option, value, str(output_dir), str(ppms[0])],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert f"classify: {option} must be" in result.stderr and value in result.stderr


def test_a_fifo_image_is_its_own_error(apps, phone_inputs, tmp_path):
    output_dir, _, ppms = phone_inputs
    fifo = tmp_path / "photo.ppm"
    os.mkfifo(fifo)
    result = subprocess.run([str(apps["plain"]), str(output_dir), str(fifo), str(ppms[0])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (f"{fifo}: error: cannot be read: not a regular file "
                                             "(a FIFO, device, socket or folder)")
    assert result.stdout.splitlines()[1].startswith(f"{ppms[0]}: ")


# 64-bit ARM: the app cross-compiled against the aarch64 wheel's libLiteRt.so and run under
# qemu-user as two CPU kinds. qemu emulates the core's instruction set (and its HWCAP), and each
# kind's /proc/cpuinfo is bind-mounted in a private mount namespace, because qemu-user passes the
# host's x86 one through and the runtime's CPU detection crashes on it.
ARM64_CPUS = {"cortex-a53": "no dot product (older and low-end phones)",
              "cortex-a76": "dot product, asimddp (phones since 2019)"}
ARM64_SYSROOT = Path("/usr/aarch64-linux-gnu")


def _with_cpuinfo(cpu: str) -> list[str]:
    """The command prefix that runs a program with `cpu`'s /proc/cpuinfo."""
    unshare = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--map-root-user",
                                                                 "--mount"]
    return [*unshare, "sh", "-c", 'mount --bind "$0" /proc/cpuinfo && exec "$@"',
            str(REPO / "tests" / "arm64" / f"{cpu}.cpuinfo")]


def _on_arm64(cpu: str, *qemu_options: str) -> list[str]:
    """The command prefix that runs an aarch64 program as `cpu`."""
    return [*_with_cpuinfo(cpu), "qemu-aarch64", "-cpu", cpu, "-L", str(ARM64_SYSROOT),
            *qemu_options]


def _arm64_unavailable() -> str | None:
    """Why the aarch64 app cannot be built and run here, or None."""
    missing = [package for package, present in (
        ("gcc-aarch64-linux-gnu", shutil.which("aarch64-linux-gnu-gcc")),
        ("libc6-dev-arm64-cross", (ARM64_SYSROOT / "lib" / "libc.so.6").exists()),
        ("libstdc++6-arm64-cross", (ARM64_SYSROOT / "lib" / "libstdc++.so.6").exists()),
        ("qemu-user", shutil.which("qemu-aarch64")),
        ("util-linux", shutil.which("unshare"))) if not present]
    if missing:
        return f"the arm64 check needs Debian's {', '.join(missing)} (.ci/run installs them)"
    probe = subprocess.run([*_with_cpuinfo("cortex-a53"), "grep", "-q", "CPU part",
                            "/proc/cpuinfo"], capture_output=True, text=True)
    if probe.returncode != 0:
        return ("no private mount namespace here to present an ARM /proc/cpuinfo to qemu-user: "
                f"{probe.stderr.strip()}")
    return None


@pytest.fixture(scope="module")
def arm64_app(tmp_path_factory):
    """The aarch64 app, built by `make aarch64` beside its runtime. CI sets REQUIRE_PHONE_PATHS=1,
    so that there a missing package or namespace fails instead of skipping."""
    reason = _arm64_unavailable()
    if reason:
        if os.environ.get("REQUIRE_PHONE_PATHS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("c_app_aarch64")
    make("aarch64", out)
    return out / "classify-aarch64"


@pytest.mark.parametrize("cpu", ARM64_CPUS)
def test_arm64_outputs_equal_x86_and_the_evaluation_byte_for_byte(apps, arm64_app, phone_inputs,
                                                                   cpu):
    output_dir, images, ppms = phone_inputs
    model = Int8Model.load(output_dir / "model_qat_int8.tflite")
    evaluation = model.raw_outputs(np.stack([letterbox(decode_image(p.read_bytes()),
                                                       model.input_size) for p in images]))
    status, x86, stderr = run_app(apps["plain"], output_dir, ppms)
    assert status == 0, stderr
    assert len(ppms) >= 50
    for threads in ("1", "2"):
        status, arm, stderr = run_app(arm64_app, output_dir, ppms, "--threads", threads,
                                      runner=_on_arm64(cpu))
        assert status == 0, stderr
        differing = [p.name for p, row in zip(ppms, evaluation)
                     if arm.get(str(p)) != x86[str(p)] or arm[str(p)][1] != row.tolist()]
        assert not differing, (f"{cpu} ({ARM64_CPUS[cpu]}), {threads} thread(s): int8 outputs or "
                               f"labels differ from x86 or the evaluation on {differing}")


def _dot_product_instructions(log: str) -> int:
    """SDOT and UDOT instructions (vector and by element) among the guest code in a qemu
    `-d in_asm` log, decoded from their encodings: qemu 7.2 prints them as `.byte`."""
    words = (int(word, 16) for word in re.findall(r"^0x[0-9a-f]+:\s+([0-9a-f]{8})\s", log, re.M))
    return sum(word & 0xBFE0FC00 in (0x0E809400, 0x2E809400)
               or word & 0xBFC0F400 in (0x0F80E000, 0x2F80E000) for word in words)


def test_arm64_cpu_kinds_take_different_int8_kernels(arm64_app, phone_inputs, tmp_path):
    """The runtime chooses its int8 kernels by CPU feature: as a Cortex-A76 it runs dot-product
    kernels, as a Cortex-A53 (where SDOT would be an illegal instruction) others. So the test
    above compared two kernel paths with x86, not one twice."""
    output_dir, _, ppms = phone_inputs
    counts = {}
    for cpu in ARM64_CPUS:
        log = tmp_path / f"{cpu}.log"
        status, _, stderr = run_app(arm64_app, output_dir, ppms[:1],
                                    runner=_on_arm64(cpu, "-d", "in_asm", "-D", str(log)))
        assert status == 0, stderr
        counts[cpu] = _dot_product_instructions(log.read_text(errors="replace"))
    assert counts["cortex-a53"] == 0 and counts["cortex-a76"] > 0, counts
