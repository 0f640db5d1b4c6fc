"""DuckDB's single-writer lock on the warehouse file, as one clear line for an operator.

DuckDB lets one process open a database file for writing (and no reader beside it). When
another process holds it (a DAG run of the other DAG, a `personalization run` in a shell,
someone's DuckDB CLI), dbt and the readers fail deep inside with a long IO error. These
helpers turn that into `WarehouseLockedError` naming the file and the process holding it.
"""

from __future__ import annotations

import re
from pathlib import Path

import psutil

from personalization.exceptions import WarehouseLockedError

_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def ensure_unlocked(path: Path) -> None:
    """Raise WarehouseLockedError if another process holds DuckDB's lock on `path`.

    Opens the file for writing and closes it at once: the cheapest question DuckDB answers.
    A missing file is not locked (and is not created here). Any other problem opening it is
    left for the step itself to report (e.g. this process already holds it open read-only).
    """
    import duckdb

    if not Path(path).exists():
        return
    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as e:
        line = lock_error_line(e, path)
        if line is not None:
            raise WarehouseLockedError(line) from None


def lock_error_line(error: BaseException, path: Path) -> str | None:
    """The one-line explanation of a DuckDB lock conflict in `error`, or None if it is not one."""
    match = _HOLDER.search(str(error))
    if match is None:
        return None
    pid = int(match["pid"])
    return (f"warehouse {path} is locked by another process: PID {pid} ({_describe(pid, match['program'])}). "
            "DuckDB allows one writer: let it finish or stop it, then rerun (in Airflow: the "
            "task retries; warehouse tasks share the one-slot pool so runs never collide).")


def _describe(pid: int, program: str) -> str:
    try:
        cmdline = " ".join(" ".join(psutil.Process(pid).cmdline()).split())
    except psutil.Error:
        return program
    return cmdline[:160] or program
