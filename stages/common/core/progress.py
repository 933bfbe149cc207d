"""Progress for long steps: a line every few seconds with the count, elapsed and remaining time.

Quiet for steps that finish quickly: nothing is printed before ``every_s`` seconds have passed,
so small test runs stay readable while a million-image evaluation still reports.
"""
from __future__ import annotations

import threading
import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class Progress:
    """Counts items of a known total; ``advance(n)`` after each chunk."""

    def __init__(self, label: str, total: int, every_s: float = 10.0, clock=time.monotonic,
                 write=print):
        self.label, self.total, self.every_s = label, total, every_s
        self.clock, self.write = clock, write
        self.done = 0
        self.started = clock()
        self.last_report = self.started

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if now - self.last_report >= self.every_s and self.done < self.total:
            self.last_report = now
            self.write(self.line(now), flush=True)

    def line(self, now: float) -> str:
        elapsed = now - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        remaining = _duration(left) if self.done else "unknown"
        return (f"{self.label}: {self.done}/{self.total} ({self.done / max(1, self.total):.0%}), "
                f"{_duration(elapsed)} elapsed, about {remaining} left")


class Heartbeat:
    """For a step whose length cannot be counted (a library call): a line every ``every_s``
    seconds saying it is still running. Use as a context manager."""

    def __init__(self, label: str, every_s: float = 10.0, write=print):
        self.label, self.every_s, self.write = label, every_s, write
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self.every_s):
            self.write(f"{self.label}: still running, {_duration(time.monotonic() - started)} "
                       "elapsed", flush=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
