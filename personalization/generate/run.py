"""Day-by-day orchestration: landing files, ground truth and the dirt log."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from personalization.exceptions import ConfigError
from personalization.generate import activity as A
from personalization.generate import deliveries as DL
from personalization.generate import dirt as D
from personalization.generate import render as R
from personalization.generate import sources as S
from personalization.generate import vocab as V
from personalization.generate.catalog import build_catalog
from personalization.generate.population import HISTORY_DAYS, build_population
from personalization.generate.records import build_records, variation_counts
from personalization.generate.simulate import Simulator
from personalization.generate.writers import LandingFile
from personalization.observability import log_event, timed, tree_rss_bytes
from personalization.sql import literal

logger = logging.getLogger(__name__)
PIXEL_HISTORY_DAYS = 30  # the first pixel delivery holds the last 30 days
_COOKIE_ID = 32  # hash purpose of cookie ids
HISTORY_WINDOW_DAYS = 60  # the order history is drawn and written in windows (bounded memory)
# DuckDB's share of the generator's memory: the record tables and the ground truth's sorts,
# which spill to the scratch folder past it (the rest of the peak is numpy and Arrow).
DUCKDB_MEMORY_LIMIT = "2GB"


def _quoted(con: duckdb.DuckDBPyConnection, sql: str, escape: bool = True) -> pa.Array:
    """One string column of `sql` as JSON literals plus the final `null` entry."""
    return R.with_null(R.json_quote(con.sql(sql).to_arrow_table().column(0).combine_chunks(), escape))


def _column(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Array:
    return con.sql(sql).to_arrow_table().column(0).combine_chunks()


def cookie_ids(seed: int, cookies: np.ndarray) -> pa.Array:
    """The anonymous_id strings of cookie numbers."""
    return R.uuid_text(seed, _COOKIE_ID, cookies)


def _dictionaries(con: duckdb.DuckDBPyConnection, pop, cat, seed: int, start_s: int) -> DL.Dictionaries:
    n_cookies = int(pop.cookie_start[-1] + pop.n_cookies[-1])
    uas = [(dev, ua) for dev in V.DEVICES for ua in V.USER_AGENTS[dev]]
    counts = np.array([len(V.USER_AGENTS[dev]) for dev in V.DEVICES])
    sku = list(cat.sku) + [f"XX-{99000 + i}" for i in range(D.UNKNOWN_SKUS)]
    return DL.Dictionaries(
        seed=seed, start_s=start_s,
        cookie_q=R.with_null(R.json_quote(cookie_ids(seed, np.arange(n_cookies)), escape=False)),
        account_id_q=_quoted(con, "SELECT customer_id FROM shop_accounts ORDER BY rid", escape=False),
        account_email=_column(con, "SELECT email FROM shop_accounts ORDER BY rid"),
        person_email=_column(con, "SELECT email FROM persons ORDER BY person"),
        contact_sha_q=_quoted(con, "SELECT email_sha256 FROM crm_contacts ORDER BY rid", escape=False),
        sku=sku, sku_q=R.with_null(R.json_quote(pa.array(sku, pa.string()))), category=V.CATEGORIES,
        city=_column(con, "SELECT v FROM _v_cities ORDER BY i").to_pylist(),
        country=[c[0] for c in V.COUNTRIES], device=V.DEVICES, user_agent=[u for _, u in uas],
        ua_offset=np.concatenate([[0], np.cumsum(counts)[:-1]]), ua_count=counts)


def _finalise_status(orders: A.Orders, upto_day: int) -> None:
    """Status changes that happened by `upto_day` are already in the delivered row."""
    done = orders.change_day <= upto_day
    orders.status[done] = orders.change_status[done]
    orders.change_day[done] = A.NEVER


def generate(out: Path, customers: int, days: int, seed: int, start: date,
             truth_path: Path | None = None) -> str:
    """Write `days` daily deliveries of all three sources under `out`, plus the ground truth.

    Args:
        out: landing directory; files go to `<out>/<source>/<ds>/` per the landing contract.
        customers: number of real persons.
        days: number of daily deliveries, the first one a historical backfill.
        seed: random seed; the same arguments give byte-identical files.
        start: the first delivery date.
        truth_path: Parquet file `source, source_id, person_id` (default `<out>/../truth.parquet`);
            the planted-dirt counts go next to it as `<stem>_dirt.json`.

    Returns:
        A one-line summary, e.g. "2,000 persons, 14 days, 312,000 events, 9,000 orders".
    """
    out = Path(out)
    truth_path = Path(truth_path) if truth_path else out.parent / "truth.parquet"
    if customers < 1 or days < 1:
        raise ConfigError(f"need at least one customer and one day (got {customers}, {days})")
    if truth_path.resolve().is_relative_to(out.resolve()):
        raise ConfigError(f"truth file {truth_path} must not be inside the landing dir {out}")
    out.mkdir(parents=True, exist_ok=True)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".generate-", dir=out))
    con = duckdb.connect()
    try:
        con.execute("SET threads = 2; SET preserve_insertion_order = true; "
                    f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'; SET enable_progress_bar = false")
        con.execute(f"SET temp_directory = '{scratch}'")
        with timed() as t:
            summary = _run(con, out, customers, days, seed, start, truth_path, scratch)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    log_event(logger, "generate.done", summary=summary, seconds=t["seconds"],
              rss_mb=round(tree_rss_bytes() / 2**20))
    return summary


def _run(con, out: Path, n: int, days: int, seed: int, start: date, truth_path: Path, scratch: Path) -> str:
    start_dt = datetime(start.year, start.month, start.day, tzinfo=UTC)
    start_s = int(start_dt.timestamp())
    start_epoch_day = start_s // 86400
    console = Console(stderr=True)
    log = D.DirtLog()
    totals = {"events": 0, "orders": 0, "contacts": 0, "customers": 0}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} days"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("generate: persons and records", total=days)
        pop = build_population(con, V.load_all(seed), n, days, start_epoch_day, seed)
        log_event(logger, "generate.persons", persons=n, rss_mb=round(tree_rss_bytes() / 2**20))
        rec = build_records(con, pop, seed, start_s)
        log_event(logger, "generate.records", crm=rec.crm_count, shop=rec.shop_count,
                  rss_mb=round(tree_rss_bytes() / 2**20))
        cat = build_catalog(seed, days)
        dicts = _dictionaries(con, pop, cat, seed, start_s)
        con.execute("DROP TABLE persons")  # records and dictionaries hold all that is needed
        con.execute("CHECKPOINT")  # compresses the in-memory record tables (about a third of their size)
        shop_created = con.execute("SELECT created_day FROM shop_accounts ORDER BY rid").fetchnumpy()["created_day"]
        sim = Simulator(con, pop, cat, rec.shop_primary, rec.shop_dup, shop_created.astype(np.int64),
                        seed, start_s, start.weekday())
        stream = DL.EventStream(dicts, len(cat.sku))
        crm_rids, shop_rids, order_truth = [], [], []
        queue = A.empty_orders()
        for i in range(days):
            ds = (start + timedelta(days=i)).isoformat()
            progress.update(task, description=f"generate {ds}")
            rng = np.random.default_rng([seed, 20, i])
            day_s, day_end = start_s + i * 86400, start_s + (i + 1) * 86400
            first = i == 0
            if not first:
                S.apply_updates(con, "crm_contacts", rng, i, day_s)
                S.apply_updates(con, "shop_accounts", rng, i, day_s)
            crm_rids.append(S.write_records(con, "crm_contacts", out / "crm" / ds / "contacts.csv",
                                            i, ds, rng, log, first))
            S.write_erasures(con, out / "crm" / ds / "erasure_requests.csv", i, day_s, rng)
            shop_rids.append(S.write_records(con, "shop_accounts", out / "shop" / ds / "customers.csv",
                                             i, ds, rng, log, first))
            with LandingFile(con, out / "shop" / ds / "products.csv", "csv") as f:
                con.register("_products", cat.table(i).append_column(
                    "pos", pa.array(np.arange(int((cat.launch_day <= i).sum())))))
                f.write("SELECT * FROM _products", int((cat.launch_day <= i).sum()))
                con.unregister("_products")
            # Orders are delivered batch by batch (status changes due today, the order history,
            # each simulated pixel day), so the two-year backfill is never in memory at once.
            pending = [queue.take(np.flatnonzero(queue.change_day > i))]

            def deliver(batch: A.Orders, force: bool, orders_file: LandingFile, ds=ds, i=i,
                        day_end=day_end, rng=rng, pending=pending) -> None:
                _finalise_status(batch, i)
                pending.append(batch.take(np.flatnonzero(batch.change_day < A.NEVER)))
                totals["orders"] += DL.write_orders(orders_file, batch, pop.country, dicts, ds, day_end, rng,
                                                    log, force)
                order_truth.append(np.stack([batch.order_no, batch.person]))

            with LandingFile(None, out / "shop" / ds / "orders.jsonl", "json") as orders_file, \
                    LandingFile(None, out / "pixel" / ds / "events.jsonl.gz", "json") as pixel_file:
                again = queue.take(np.flatnonzero(queue.change_day == i))
                again.status[:] = again.change_status
                again.change_day[:] = A.NEVER
                deliver(again, False, orders_file)
                for lo in range(-HISTORY_DAYS, -PIXEL_HISTORY_DAYS, HISTORY_WINDOW_DAYS) if first else []:
                    hi = min(lo + HISTORY_WINDOW_DAYS, -PIXEL_HISTORY_DAYS)
                    deliver(sim.history(lo, hi), lo == -HISTORY_DAYS, orders_file)
                for d in range(-PIXEL_HISTORY_DAYS, 1) if first else [i]:
                    # Pixel first: orders get their final times from the purchase events.
                    orders, events = sim.day(d)
                    totals["events"] += stream.write(
                        pixel_file, events, d, ds, day_end, np.random.default_rng([seed, 30, d + 1_000_000]), log,
                        hold_late=(d == i and i < days - 1), release_late=(d == i and not first),
                        force=first and d == i)
                    del events
                    deliver(orders, False, orders_file)
            queue = A.Orders.concat(pending)
            progress.advance(task)
            log_event(logger, "generate.day", ds=ds, events=totals["events"], orders=totals["orders"],
                      rss_mb=round(tree_rss_bytes() / 2**20))
        progress.update(task, description="generate: ground truth")
        _write_truth(con, truth_path, seed, np.concatenate(crm_rids), np.concatenate(shop_rids),
                     np.concatenate(order_truth, axis=1), stream.cookie_seen, pop)
        dirt_path = truth_path.with_name(f"{truth_path.stem}_dirt.json")
        dirt_path.write_text(json.dumps({"seed": seed, "customers": n, "days": days,
                                         "start": start.isoformat(), **log.to_dict(),
                                         "record_variations": variation_counts(con, days - 1)},
                                        indent=2) + "\n")
    return f"{n:,} persons, {days} days, {totals['events']:,} events, {totals['orders']:,} orders"


def _write_truth(con, path: Path, seed: int, crm_rids: np.ndarray, shop_rids: np.ndarray,
                 orders: np.ndarray, cookie_seen: np.ndarray, pop) -> None:
    """Every source record id that appears in the landing files, with its real person."""
    cookies = np.flatnonzero(cookie_seen)
    cookie_person = np.repeat(np.arange(pop.n), pop.n_cookies)[cookies]
    con.register("_t_crm", pa.table({"rid": np.unique(crm_rids)}))
    con.register("_t_shop", pa.table({"rid": np.unique(shop_rids)}))
    con.register("_t_orders", pa.table({"order_no": orders[0], "person": orders[1]}))
    con.register("_t_pixel", pa.table({"anonymous_id": cookie_ids(seed, cookies),
                                       "person": cookie_person}))
    # Each source sorted on its own, then the parts streamed into one file in source order:
    # one sort over the union of all of them ran out of the generator's 2 GB at 5M people
    # (≈ 45M rows), the in-memory record tables holding half of it.
    parts = {
        "crm": "SELECT c.contact_id AS source_id, c.person FROM _t_crm t JOIN crm_contacts c ON c.rid = t.rid",
        "order": "SELECT DISTINCT 'ORD-' || lpad(order_no::VARCHAR, 9, '0'), person FROM _t_orders",
        "pixel": "SELECT anonymous_id, person FROM _t_pixel",
        "shop": "SELECT a.customer_id, a.person FROM _t_shop t JOIN shop_accounts a ON a.rid = t.rid",
    }
    files = [path.with_name(f".{path.name}.{source}.tmp") for source in sorted(parts)]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        for source, file in zip(sorted(parts), files, strict=True):
            con.execute(f"""COPY (SELECT '{source}' AS source, source_id,
                                         'P' || lpad(person::VARCHAR, 8, '0') AS person_id
                                  FROM ({parts[source]}) AS part (source_id, person) ORDER BY source_id)
                            TO {literal(file)} (FORMAT PARQUET)""")
        con.execute(f"COPY (SELECT * FROM read_parquet([{', '.join(literal(f) for f in files)}])) "
                    f"TO {literal(tmp)} (FORMAT PARQUET)")
    finally:
        for file in files:
            file.unlink(missing_ok=True)
    tmp.replace(path)
    for name in ("_t_crm", "_t_shop", "_t_orders", "_t_pixel"):
        con.unregister(name)
