"""What a stored hash of each event id would save the nightly event-id statements.

    python benchmarks/event_key_probe.py --home DIR [--scratch DIR]

Copies the home's staged event ids (`stg_pixel__events`: id, delivery date, `md5_number` and
`hash` of the id) into a scratch database, then times, twice each, in CPU and wall seconds,
what a night does over every stored id: a probe with the last delivery's ids plus a sample
of 84,000 old ones (the shape of `stg_pixel__events`' "already loaded" probe and the
resolved events' delete), and the whole-table duplicate check, on the id and on each key.
Read-only on the home; the scratch database (≈ 40 bytes per event) is removed afterwards.
docs/performance.md, "A 30-day night".
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from personalization.config import load_settings  # noqa: E402
from personalization.sql import literal  # noqa: E402


def _clock(con: duckdb.DuckDBPyConnection, label: str, sql: str) -> None:
    # process_time: CPU of every thread of the process, DuckDB's too (as scoring_stages.py).
    cpu, start = time.process_time(), time.perf_counter()
    found = con.execute(sql).fetchone()[0]
    cpu = time.process_time() - cpu
    print(f"{label:32s} rows {found:>10,}  wall {time.perf_counter() - start:6.2f} s  "
          f"CPU {cpu:6.2f} s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--scratch", type=Path, default=None, help="folder for the scratch database")
    args = ap.parse_args()
    settings = load_settings(home=args.home)
    folder = Path(tempfile.mkdtemp(dir=args.scratch))
    try:
        con = duckdb.connect(str(folder / "keys.duckdb"), config=settings.duckdb_config())
        con.execute(f"ATTACH {literal(settings.warehouse_path)} AS wh (READ_ONLY)")
        con.execute("CREATE TABLE ev AS SELECT event_id, delivered_on, md5_number(event_id) AS k128, "
                    "hash(event_id) AS k64 FROM wh.main.stg_pixel__events")
        con.execute("DETACH wh")
        con.execute("CHECKPOINT")
        con.execute("""CREATE TEMP TABLE probe AS
            SELECT event_id, md5_number(event_id) AS k128, hash(event_id) AS k64 FROM ev
            WHERE delivered_on = (SELECT max(delivered_on) FROM ev)
            UNION ALL
            SELECT event_id, md5_number(event_id), hash(event_id) FROM ev USING SAMPLE 84000 ROWS""")
        bound = con.execute("SELECT max(delivered_on) - 1 FROM ev").fetchone()[0]
        print(f"{con.execute('SELECT count(*) FROM ev').fetchone()[0]:,} stored ids, "
              f"{con.execute('SELECT count(*) FROM probe').fetchone()[0]:,} probing")
        old = f"delivered_on <= DATE '{bound}'"
        for _ in range(2):
            _clock(con, "probe on the id (VARCHAR)",
                   f"SELECT count(*) FROM ev WHERE {old} AND event_id IN (SELECT event_id FROM probe)")
            _clock(con, "probe on md5_number (UHUGEINT)",
                   f"SELECT count(*) FROM ev WHERE {old} AND k128 IN (SELECT k128 FROM probe)")
            _clock(con, "probe on hash (UBIGINT)",
                   f"SELECT count(*) FROM ev WHERE {old} AND k64 IN (SELECT k64 FROM probe)")
            _clock(con, "duplicates of the id",
                   "SELECT count(*) FROM (SELECT event_id FROM ev GROUP BY 1 HAVING count(*) > 1)")
            _clock(con, "duplicates of md5_number",
                   "SELECT count(*) FROM (SELECT k128 FROM ev GROUP BY 1 HAVING count(*) > 1)")
        con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
