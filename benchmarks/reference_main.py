"""Run one reference implementation in its own process and print JSON (result, time).

A separate process gives each competitor a clean heap and an honest peak-memory figure, and
lets pandas run out of memory without taking the harness down."""

import json
import resource
import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.references import duckdb_reference, pandas_reference


def main() -> None:
    kind, lake, ds = sys.argv[1], Path(sys.argv[2]), date.fromisoformat(sys.argv[3])
    if len(sys.argv) > 4:  # optional address-space cap in MiB (to show who runs out first)
        cap = int(sys.argv[4]) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    start = time.perf_counter()
    try:
        result = (duckdb_reference if kind == "duckdb" else pandas_reference)(lake, ds)
        status = "ok"
    except MemoryError:
        result, status = {}, "out of memory"
    seconds = time.perf_counter() - start
    # Peak memory is sampled by the harness from outside this process.
    print(json.dumps({"kind": kind, "status": status, "seconds": round(seconds, 2),
                      "result": result}))


if __name__ == "__main__":
    main()
