"""A step that ran out of disk, said in one line: which disks the product writes to and how
much each has free now. DuckDB and Python report it deep inside a statement ("No space left
on device", errno 28), and at scale it is the most likely way for a night to fail (a 3M
backfill's extract spills tens of GB; the erasure copies the whole warehouse)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from personalization.config import Settings

_MESSAGE = "no space left on device"


def gib(n: int) -> str:
    """Bytes as GiB with one decimal, as every disk message says them."""
    return f"{n / 2**30:.1f} GiB"


def out_of_space_line(error: BaseException, step: str, settings: Settings) -> str | None:
    """The one-line explanation when `error` (or an error it wraps) is a full disk, else None."""
    if not _is_out_of_space(error):
        return None
    disks = ", ".join(f"{where} {gib(free)} free" for where, free in _free_by_disk(settings))
    return (f"{step} ran out of disk space ({disks}). Steps are idempotent for their date: free "
            "space (DuckDB spills beside the warehouse and under the home; the erasure copies "
            "the warehouse) or move the home to a larger disk, then run the step again.")


def _is_out_of_space(error: BaseException | None) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or _MESSAGE in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
    return False


def _free_by_disk(settings: Settings) -> list[tuple[str, int]]:
    """(folder, free bytes) for each disk among the home, the lake, the warehouse's folder and
    the landing folder, the first folder named for each."""
    out, devices = [], set()
    for folder in (settings.home, settings.lake_dir, settings.warehouse_path.parent, settings.landing_dir):
        path = Path(folder)
        while not path.exists() and path != path.parent:
            path = path.parent
        device = os.stat(path).st_dev
        if device not in devices:
            devices.add(device)
            out.append((str(folder), shutil.disk_usage(path).free))
    return out
