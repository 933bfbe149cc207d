"""Starts a multi-worker cluster of local processes for the multi-worker tests, and always stops it.

    python tests/helpers/multi_worker_cluster.py SPEC.json

SPEC: ``{"workers": [{"argv": [...], "cwd": ..., "env": {...}}, ...], "timeout_s": N,
"kill": {"worker": i, "signal": "KILL", "when": {"worker": j, "line": "regex"}}}`` ("kill"
optional). Each worker gets a TF_CONFIG naming 127.0.0.1 ports picked free, and one CPU device.
Prints a JSON report: per worker its exit status, output and, when a worker was killed, how
many seconds after the kill it ended.

The tests run this inside a network namespace of its own (``unshare -rn``) with only the
loopback interface, through ``run_cluster``: TensorFlow's servers listen on every interface of
their namespace, so this is what keeps them reachable on loopback only.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def has_private_network() -> bool:
    """Whether ``unshare -rn`` (a network namespace of our own, loopback only) works here."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


def last_json_line(text: str) -> dict:
    """The JSON document a helper prints last (TensorFlow may print before it)."""
    return json.loads(text.strip().splitlines()[-1])


def run_cluster(folder: Path, workers: list[dict], timeout_s: int, kill: dict | None = None):
    """Run this harness in its own network namespace; returns its report. ``folder`` keeps the
    spec files."""
    spec = folder / f"cluster_{len(list(folder.glob('cluster_*.json')))}.json"
    spec.write_text(json.dumps({"workers": workers, "timeout_s": timeout_s, "kill": kill}))
    result = subprocess.run(["unshare", "-rn", sys.executable, __file__, str(spec)],
                            capture_output=True, text=True, timeout=timeout_s + 60)
    assert result.returncode == 0, result.stderr[-3000:]
    return last_json_line(result.stdout)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Worker:
    def __init__(self, index: int, spec: dict, cluster: dict):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, **spec.get("env", {}), "TF_CONFIG": json.dumps(config),
               "CUDA_VISIBLE_DEVICES": ""}
        self.process = subprocess.Popen(spec["argv"], cwd=spec.get("cwd"), env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.ended_at: float | None = None
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stdout, self.stdout),
                                               (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def has_line(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in list(self.stdout) + list(self.stderr))

    def poll(self) -> bool:
        if self.process.poll() is not None and self.ended_at is None:
            self.ended_at = time.monotonic()
        return self.ended_at is not None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)


def run(spec: dict) -> dict:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False, capture_output=True)
    ports = free_ports(len(spec["workers"]))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [Worker(index, worker, cluster) for index, worker in enumerate(spec["workers"])]
    deadline = time.monotonic() + spec["timeout_s"]
    kill, killed_at, timed_out = spec.get("kill"), None, False
    try:
        while not all(worker.poll() for worker in workers):
            if time.monotonic() > deadline:
                timed_out = True
                break
            if kill and killed_at is None and workers[kill["when"]["worker"]].has_line(
                    kill["when"]["line"]):
                victim = workers[kill["worker"]]
                os.killpg(victim.process.pid, getattr(signal, "SIG" + kill["signal"]))
                killed_at = time.monotonic()
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.stop()
    return {"timed_out": timed_out, "killed": killed_at is not None,
            "workers": [{"returncode": worker.process.returncode,
                         "stdout": "".join(worker.stdout), "stderr": "".join(worker.stderr),
                         "ended_after_kill_s": (round(worker.ended_at - killed_at, 1)
                                                if killed_at is not None and worker.ended_at
                                                else None)}
                        for worker in workers]}


if __name__ == "__main__":
    with open(sys.argv[1]) as spec_file:
        print(json.dumps(run(json.load(spec_file))))
