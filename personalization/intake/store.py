"""Durable day files of accepted events: what the trigger runner tails and the nightly
extract loads as the lake table `raw/pixel/intake_events`.

`<intake_dir>/pixel/<ds>/events.jsonl`: one clean event per line, appended and fsync'd
before the request is answered, so an acknowledged event survives a kill. `ds` is the day
the event was received (UTC), like a landing delivery. A kill in the middle of a write
leaves a partial last line of an event nobody acknowledged; it is cut off when the file is
next opened. Rejected events go to `quarantine.jsonl` beside it, with their reason.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import date, timedelta
from pathlib import Path

import duckdb

DAY_FILE = "events.jsonl"
QUARANTINE_FILE = "quarantine.jsonl"


def day_dir(intake_dir: Path, ds: date) -> Path:
    return intake_dir / "pixel" / ds.isoformat()


def day_file(intake_dir: Path, ds: date) -> Path:
    """The accepted events received on `ds`."""
    return day_dir(intake_dir, ds) / DAY_FILE


def complete_length(path: Path) -> int:
    """Bytes of `path` up to and including its last newline (0 if none or no file)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    with path.open("rb") as f:
        pos = size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                return pos - step + cut + 1
            pos -= step
    return 0


def _read_event_ids(path: Path) -> set[str]:
    if not path.is_file() or complete_length(path) == 0:
        return set()
    rows = duckdb.sql(
        "SELECT event_id FROM read_json(?, format='newline_delimited', "
        "columns={'event_id': 'VARCHAR'}, ignore_errors=true)", params=[str(path)]).fetchall()
    return {r[0] for r in rows if r[0] is not None}


class EventStore:
    """Appends accepted events to the day file of their receiving day; thread-safe.

    Deduplicates by event_id over the receiving day and the day before (at-least-once
    senders retry; later repeats are removed again by the nightly staging model).
    """

    def __init__(self, intake_dir: Path):
        self.intake_dir = intake_dir
        self._lock = threading.Lock()
        self._seen: dict[date, set[str]] = {}
        self._repaired: set[Path] = set()

    def _ids(self, ds: date) -> set[str]:
        if ds not in self._seen:
            self._seen[ds] = _read_event_ids(day_file(self.intake_dir, ds))
            for old in [d for d in self._seen if d < ds - timedelta(days=1)]:
                del self._seen[old]
        return self._seen[ds]

    def _append(self, path: Path, lines: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path not in self._repaired:
            keep = complete_length(path)
            if path.exists() and keep != path.stat().st_size:
                os.truncate(path, keep)  # the tail of a write that was never acknowledged
            self._repaired.add(path)
        payload = "".join(line + "\n" for line in lines).encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, ds: date, events: list[dict], rejected: list[dict]) -> tuple[int, int]:
        """Store clean `events` (skipping repeats) and `rejected` ones; durable on return.

        Returns:
            (events written, duplicates skipped).
        """
        with self._lock:
            today, yesterday = self._ids(ds), self._ids(ds - timedelta(days=1))
            fresh, batch_ids = [], set()
            for event in events:
                event_id = event["event_id"]
                if event_id in today or event_id in yesterday or event_id in batch_ids:
                    continue
                batch_ids.add(event_id)
                fresh.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
            if fresh:
                self._append(day_file(self.intake_dir, ds), fresh)
                today |= batch_ids
            if rejected:
                self._append(day_dir(self.intake_dir, ds) / QUARANTINE_FILE,
                             [json.dumps(r, ensure_ascii=False, default=str) for r in rejected])
            return len(fresh), len(events) - len(fresh)
