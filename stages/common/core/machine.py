"""What machine a timing was taken on: the CPU's name matters more than its core count (two
2-core machines of the same kind ran training 6-9x apart)."""
from __future__ import annotations

import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name as ``lscpu`` gives it ("Model name"), from /proc/cpuinfo; where there is
    none (not Linux, or a CPU that gives no name), what Python's platform module knows."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict:
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
