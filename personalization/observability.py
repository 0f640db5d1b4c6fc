"""Structured logs (one line per event, with counts) and the report every step returns."""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Plain one-line log records; safe to call more than once."""
    root = logging.getLogger()
    if not any(getattr(h, "_personalization", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        handler._personalization = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with its fields as `key=value` pairs (values JSON-encoded when not simple)."""
    parts = [event]
    for key, value in fields.items():
        if isinstance(value, str | int | float | bool) or value is None:
            parts.append(f"{key}={value}")
        else:
            parts.append(f"{key}={json.dumps(value, default=str)}")
    logger.log(level, " ".join(parts))


@dataclass
class StepReport:
    """What one step did for one logical date."""

    step: str
    ds: str
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    seconds: float = 0.0
    status: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tree_rss_bytes() -> int:
    """Resident memory of this process and all its children."""
    proc = psutil.Process()
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


@contextmanager
def timed():
    """Yields a dict that holds `seconds` once the block ends."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = round(time.perf_counter() - start, 3)
