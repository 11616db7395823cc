"""Run a command and measure its wall time and peak memory, for tests and benchmarks."""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measured:
    returncode: int
    seconds: float
    peak_mib: float
    stderr: str


def high_water_mib(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM), 0 once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_measured(command: list[str], env: dict[str, str], interval: float = 0.01) -> Measured:
    """Run ``command`` to its end, sampling the kernel's high-water mark of its memory.

    The mark is read from /proc while the process runs: the rusage a parent gets for a child
    also counts the parent's own memory at the fork, which would measure the caller."""
    with tempfile.TemporaryFile() as errors:
        began = time.monotonic()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, high_water_mib(proc.pid))
            time.sleep(interval)
        seconds = time.monotonic() - began
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    return Measured(proc.returncode, seconds, peak, stderr)
