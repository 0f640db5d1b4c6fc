"""Peak resident memory of this process tree, sampled in the background, and how busy the
machine was meanwhile (load average, CPU seconds of this tree): on a shared machine wall
seconds alone mislead, so results record both."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

import psutil

from personalization.observability import tree_rss_bytes


class PeakSampler:
    """Samples RSS of the process tree every `interval` seconds; `peak()` since last reset."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self._peak = 0
        self._loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, tree_rss_bytes())
            self._loads.append(os.getloadavg()[0])
            time.sleep(self.interval)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        self._peak = tree_rss_bytes()
        self._loads = []

    def load(self) -> float | None:
        """Mean 1-minute load average since the last reset (None if not sampled yet)."""
        loads = self._loads or [os.getloadavg()[0]]
        return round(sum(loads) / len(loads), 2)

    def peak(self) -> int:
        return max(self._peak, tree_rss_bytes())


@contextmanager
def measured(sampler: PeakSampler, into: dict, name: str):
    """Record under `into[name]`: wall seconds, peak RSS (MiB), CPU seconds of this process and
    its children, the mean load average, and `machine_share`: the CPU seconds as a
    share of what all cores could give in that wall time (low under a high load = starved)."""
    sampler.reset()
    start, cpu0 = time.perf_counter(), _cpu_seconds()
    yield
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu0
    into[name] = {"seconds": round(seconds, 2),
                  "peak_rss_mib": round(sampler.peak() / 2**20, 1),
                  "cpu_seconds": round(cpu, 2),
                  "load_avg": sampler.load(),
                  "machine_share": round(cpu / (seconds * (os.cpu_count() or 1)), 3) if seconds else None}


def _cpu_seconds() -> float:
    """CPU seconds of this process, its finished children and its live ones (a Spark JVM
    runs for the whole process: its time would show in os.times() only after it ends)."""
    t = os.times()
    live = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            live += times.user + times.system
        except psutil.Error:
            pass
    return t.user + t.system + t.children_user + t.children_system + live
