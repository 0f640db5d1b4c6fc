"""Peak resident memory of this process tree, sampled in the background."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from personalization.observability import tree_rss_bytes


class PeakSampler:
    """Samples RSS of the process tree every `interval` seconds; `peak()` since last reset."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, tree_rss_bytes())
            time.sleep(self.interval)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        self._peak = tree_rss_bytes()

    def peak(self) -> int:
        return max(self._peak, tree_rss_bytes())


@contextmanager
def measured(sampler: PeakSampler, into: dict, name: str):
    """Record wall seconds and peak RSS (MiB) of the block under `into[name]`."""
    sampler.reset()
    start = time.perf_counter()
    yield
    into[name] = {"seconds": round(time.perf_counter() - start, 2),
                  "peak_rss_mib": round(sampler.peak() / 2**20, 1)}
