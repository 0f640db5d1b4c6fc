"""Structured logs (one line per event, with counts) and the report every step returns."""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Chatty at INFO (GX logs ~200 "Skipping registering function" lines when imported); their
# warnings and errors still come through.
QUIET_LOGGERS = ("great_expectations", "dbt", "httpx", "httpcore", "urllib3", "asyncio",
                 "matplotlib", "numexpr", "fsspec", "filelock")
RESOURCE_TRACKER_WARNING = "ignore:resource_tracker:UserWarning:multiprocessing.resource_tracker"


def configure_logging(level: str = "INFO", *, handler: bool = True) -> None:
    """One-line log records: our loggers at `level`, third-party ones at WARNING.

    Args:
        level: level of the root logger (the CLI passes WARNING and raises `personalization`
            to INFO itself).
        handler: add one stderr handler to the root logger (once, however often this is
            called). Pass False where the host already owns the handlers, as Airflow does in
            a task: a second handler prints every line again, and Airflow files whatever
            reaches stderr at level ERROR.
    """
    root = logging.getLogger()
    if handler:
        if not any(getattr(h, "_personalization", False) for h in root.handlers):
            stream = logging.StreamHandler()
            stream.setFormatter(logging.Formatter(_LOG_FORMAT))
            stream._personalization = True  # type: ignore[attr-defined]
            root.addHandler(stream)
        root.setLevel(level)
    else:
        logging.getLogger("personalization").setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # dbt leaves a few multiprocessing semaphores behind; the resource tracker (a child
    # process, which reads this variable) would warn about them on stderr at exit.
    os.environ.setdefault("PYTHONWARNINGS", RESOURCE_TRACKER_WARNING)


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


# Statuses of a step that did its job with nothing to flag; any other status of a step that
# returned (warn, warning, partial, skipped, ...) is worth an operator's look. An empty file
# is a valid delivery of nothing (most days bring no erasure requests); volume drops are the
# lake gate's to judge.
CLEAN_STATUSES = frozenset({"ok", "passed", "loaded", "empty", "dry_run"})


def warnings_of(report: StepReport) -> list[str]:
    """What an operator should look at in a finished step: one line each, [] when clean.

    Steps list their warnings in `details["warnings"]` (dbt tests that warned, GX warnings);
    a few name them in other details (stale or failed segments, a missing optional file).
    When a step flags a status without saying why, the status is the line.
    """
    d = report.details
    if report.status in CLEAN_STATUSES or d.get("optional"):  # optional: absent by design
        return []
    lines = [str(w) for w in d.get("warnings") or []]
    lines += [f"segment {name} failed, previous export kept: {why}"
              for name, why in (d.get("failed_segments") or {}).items()]
    if d.get("stale_segments"):
        lines.append(f"stale segments (previous files kept): {', '.join(d['stale_segments'])}")
    if d.get("missing_file"):
        lines.append(f"not delivered (source not required): {d['missing_file']}")
    if report.status == "partial":
        lines.append(f"{report.rows_quarantined} record(s) failed to sync")
    return lines or [f"status {report.status}"]
