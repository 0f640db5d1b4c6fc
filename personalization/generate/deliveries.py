"""Orders (JSONL) and pixel events (JSONL.gz): dirt planting and rendering through DuckDB.

Strings are attached as Arrow dictionary columns (numbers index a dictionary built once), so
DuckDB only formats timestamps, ids and URLs on the way out: no joins, no Python per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from personalization.generate import activity as A
from personalization.generate import dirt as D
from personalization.generate.vocab import SHOP_DOMAIN
from personalization.generate.writers import LandingFile, render_lines

BASE_URL = f"https://www.{SHOP_DOMAIN}/"


@dataclass
class Dictionaries:
    """String dictionaries that numeric columns index into."""

    cookie: pa.Array  # anonymous_id per cookie number
    account_id: pa.Array  # customer_id per shop rid
    account_email: pa.Array
    person_email: pa.Array
    contact_sha: pa.Array  # email_sha256 per CRM rid
    sku: pa.Array  # catalogue SKUs, then unknown SKUs
    category: pa.Array
    city: pa.Array
    country: pa.Array
    device: pa.Array
    user_agent: pa.Array
    ua_offset: np.ndarray  # per device: first user agent and count
    ua_count: np.ndarray


def dict_col(indices: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    idx = np.asarray(indices, dtype=np.int64)
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32), mask=idx < 0), dictionary)


EVENT_SQL = """
    SELECT pos, event_id, occurred_at, anonymous_id, customer_id, email_sha256, event_type, sku,
           campaign_id, variant,
           CASE event_type
               WHEN 'page_view' THEN '{base}' || coalesce('c/' || page_category, '')
                                   || coalesce('?utm_source=email&utm_campaign=' || campaign_id, '')
               WHEN 'product_view' THEN '{base}p/' || lower(sku)
               WHEN 'search' THEN '{base}search?q=' || coalesce(page_category, 'sale')
               WHEN 'add_to_cart' THEN '{base}cart'
               WHEN 'checkout_start' THEN '{base}checkout'
               WHEN 'purchase' THEN '{base}checkout/complete?order=' || order_id
               WHEN 'login' THEN '{base}account/login'
               WHEN 'email_click' THEN '{base}?utm_source=email&utm_campaign=' || campaign_id
                                       || '&utm_content=' || variant
           END AS url,
           country, city, device, user_agent
    FROM (
        SELECT pos, CASE WHEN no_id THEN NULL
                         ELSE uuid_of(md5('{seed}:' || id_day || ':' || seq)) END AS event_id,
               iso_ts(occurred_s) AS occurred_at, anonymous_id, customer_id, email_sha256,
               event_type, sku,
               CASE WHEN campaign < {never} THEN 'cmp-' || strftime(DATE '{start}' + campaign::INTEGER, '%Y%m%d') END AS campaign_id,
               CASE variant WHEN 0 THEN 'A' WHEN 1 THEN 'B' END AS variant,
               CASE WHEN order_no >= 0 THEN 'ORD-' || lpad(order_no::VARCHAR, 9, '0') END AS order_id,
               page_category, country, city, device, user_agent
        FROM {table}
    )
"""

ORDER_SQL = """
    SELECT pos, CASE WHEN no_id THEN NULL ELSE 'ORD-' || lpad(order_no::VARCHAR, 9, '0') END AS order_id,
           customer_id,
           CASE WHEN bad_email THEN replace(coalesce(email, 'guest'), '@', ' at ') ELSE email END AS email,
           iso_ts(ordered_s) AS ordered_at, status, currency,
           (CASE bad_amount WHEN 1 THEN '"' || replace(printf('%.2f', total), '.', ',') || '"'
                            WHEN 2 THEN '"N/A"' ELSE round(total, 2)::VARCHAR END)::JSON AS total_amount,
           items
    FROM {table}
"""


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE MACRO uuid_of(h) AS substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' "
                "|| substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12)")


class EventStream:
    """Plants dirt into a day's events and appends them to a pixel file."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dicts: Dictionaries, seed: int, start: str,
                 scratch: Path, n_products: int):
        self.con, self.dicts, self.seed, self.start = con, dicts, seed, start
        self.scratch, self.n_products = scratch, n_products
        self.held: dict[str, np.ndarray] | None = None  # late events for the next delivery
        self.cookie_seen = np.zeros(len(dicts.cookie), dtype=bool)

    def _frame(self, ev: A.Events, id_day: int) -> dict[str, np.ndarray]:
        n = len(ev)
        f = {k: getattr(ev, k) for k in ("occurred_s", "cookie", "cust_rid", "sha_rid", "etype",
                                          "product", "campaign", "variant", "order_no", "page_cat",
                                          "city", "country", "device", "ua")}
        f["id_day"] = np.full(n, id_day, dtype=np.int64)
        f["seq"] = np.arange(n, dtype=np.int64)
        f["no_id"] = np.zeros(n, dtype=bool)
        return f

    def write(self, out: LandingFile, ev: A.Events, id_day: int, ds: str, day_end_s: int,
              rng: np.random.Generator, log: D.DirtLog, hold_late: bool, release_late: bool,
              force: bool) -> int:
        """Append one simulated day of events (with dirt) to `out`; returns lines written."""
        f = self._frame(ev, id_day)
        n = len(f["seq"])
        take = lambda fr, idx: {k: v[idx] for k, v in fr.items()}  # noqa: E731
        if hold_late:  # at-least-once tracking: some events arrive with the next delivery
            late = D.pick(rng, n, "late_event", force)
            keep = np.ones(n, dtype=bool)
            keep[late] = False
            self.held, f = take(f, late), take(f, keep)
        if release_late and self.held is not None:
            log.add(ds, "pixel/events", "late_event", len(self.held["seq"]))
            f = {k: np.concatenate([self.held[k], f[k]]) for k in f}
            self.held = None
        n = len(f["seq"])
        future = D.pick(rng, n, "future_timestamp", force)
        f["occurred_s"][future] = day_end_s + rng.integers(3600, 3 * 86400, len(future))
        unknown = D.pick(rng, np.flatnonzero(f["product"] >= 0), "unknown_sku", force)
        f["product"][unknown] = self.n_products + rng.integers(0, D.UNKNOWN_SKUS, len(unknown))
        dup = D.pick(rng, n, "duplicate_event_id", force)
        nokey = D.pick(rng, n, "missing_key", force)
        broken = D.pick(rng, n, "malformed_line", force)
        idx = np.concatenate([np.arange(n), dup, nokey])
        key = np.concatenate([np.arange(n, dtype=float), dup + 1 + rng.random(len(dup)) * 300,
                              rng.random(len(nokey)) * n])
        order = np.argsort(key, kind="stable")
        full = take(f, idx[order])
        full["no_id"] = np.concatenate([np.zeros(n + len(dup), bool), np.ones(len(nokey), bool)])[order]
        log.add(ds, "pixel/events", "future_timestamp", len(future))
        log.add(ds, "pixel/events", "unknown_sku", len(unknown))
        log.add(ds, "pixel/events", "duplicate_event_id", len(dup))
        log.add(ds, "pixel/events", "missing_key", len(nokey))
        log.add(ds, "pixel/events", "malformed_line", len(broken))
        self.cookie_seen[f["cookie"]] = True
        raw = D.break_json(rng, self._render(take(f, broken))) if len(broken) else []
        self.con.register("_ev", self._arrow(full))
        out.write(self._sql("_ev"), len(full["seq"]), raw, rng)
        self.con.unregister("_ev")
        return len(full["seq"]) + len(raw)

    def _render(self, f: dict[str, np.ndarray]) -> list[str]:
        f = {**f, "no_id": np.zeros(len(f["seq"]), bool)}
        self.con.register("_evb", self._arrow(f))
        lines = render_lines(self.con, self._sql("_evb"), "json", self.scratch)
        self.con.unregister("_evb")
        return lines

    def _sql(self, table: str) -> str:
        return EVENT_SQL.format(base=BASE_URL, seed=self.seed, never=A.NEVER, start=self.start, table=table)

    def _arrow(self, f: dict[str, np.ndarray]) -> pa.Table:
        d = self.dicts
        etypes = pa.array(list(A.EVENT_TYPES))
        ua = np.where(f["device"] >= 0, d.ua_offset[f["device"]] + f["ua"] % d.ua_count[f["device"]], -1)
        return pa.table({
            "pos": np.arange(len(f["seq"]), dtype=np.int64), "no_id": f["no_id"],
            "id_day": f["id_day"], "seq": f["seq"], "occurred_s": f["occurred_s"],
            "anonymous_id": dict_col(f["cookie"], d.cookie),
            "customer_id": dict_col(f["cust_rid"], d.account_id),
            "email_sha256": dict_col(f["sha_rid"], d.contact_sha),
            "event_type": dict_col(f["etype"], etypes), "sku": dict_col(f["product"], d.sku),
            "campaign": f["campaign"], "variant": f["variant"], "order_no": f["order_no"],
            "page_category": dict_col(f["page_cat"], d.category),
            "country": dict_col(f["country"], d.country), "city": dict_col(f["city"], d.city),
            "device": dict_col(f["device"], d.device), "user_agent": dict_col(ua, d.user_agent),
        })


def write_orders(con: duckdb.DuckDBPyConnection, path: Path, orders: A.Orders, pop_country: np.ndarray,
                 dicts: Dictionaries, ds: str, day_end_s: int, rng: np.random.Generator,
                 log: D.DirtLog, force: bool, scratch: Path) -> int:
    """Write one day's orders file with its dirt; returns lines written."""
    n = len(orders)
    o = orders
    qty = o.item_qty.copy()
    product = o.item_product.copy()
    counts = np.diff(o.item_offsets)
    total = np.add.reduceat(qty * o.item_price, o.item_offsets[:-1]) if n else np.zeros(0)
    ordered_s = o.ordered_s.copy()
    guest = np.flatnonzero(o.rid < 0)
    bad_email = np.zeros(n, dtype=bool)
    bad_email[D.pick(rng, guest, "invalid_email", force)] = True
    bad_amount = np.zeros(n, dtype=np.int64)
    wrong = D.pick(rng, n, "wrong_type", force)
    bad_amount[wrong] = rng.integers(1, 3, len(wrong))
    unknown = D.pick(rng, n, "unknown_sku", force)
    product[o.item_offsets[unknown] + (rng.random(len(unknown)) * counts[unknown]).astype(np.int64)] = \
        len(dicts.sku) - D.UNKNOWN_SKUS + rng.integers(0, D.UNKNOWN_SKUS, len(unknown))
    negative = D.pick(rng, n, "negative_quantity", force)
    qty[o.item_offsets[negative]] *= -1
    future = D.pick(rng, n, "future_timestamp", force)
    ordered_s[future] = day_end_s + rng.integers(3600, 3 * 86400, len(future))
    nokey = D.pick(rng, n, "missing_key", force)
    broken = D.pick(rng, n, "malformed_line", force)
    for kind, idx in (("invalid_email", bad_email.sum()), ("wrong_type", len(wrong)),
                      ("unknown_sku", len(unknown)), ("negative_quantity", len(negative)),
                      ("future_timestamp", len(future)), ("missing_key", len(nokey)),
                      ("malformed_line", len(broken))):
        log.add(ds, "shop/orders", kind, idx)
    items = pa.ListArray.from_arrays(pa.array(o.item_offsets.astype(np.int32)), pa.StructArray.from_arrays(
        [dict_col(product, dicts.sku).dictionary_decode(), pa.array(qty), pa.array(o.item_price)],
        names=["sku", "quantity", "unit_price"]))
    currency = pa.array(np.array(A.CURRENCIES, dtype=object)[A.COUNTRY_CURRENCY[pop_country[o.person]]]
                        if n else np.zeros(0, dtype=object), pa.string())
    account_email = dict_col(o.rid, dicts.account_email).dictionary_decode()
    guest_email = dict_col(np.where(o.rid >= 0, -1, o.person), dicts.person_email).dictionary_decode()
    table = pa.table({
        "order_no": o.order_no, "no_id": np.zeros(n, bool),
        "customer_id": dict_col(o.rid, dicts.account_id),
        "email": pc.if_else(pa.array(o.rid >= 0), account_email, guest_email),
        "bad_email": bad_email, "ordered_s": ordered_s,
        "status": dict_col(o.status, pa.array(["placed", "cancelled", "refunded"])),
        "currency": currency, "total": total, "bad_amount": bad_amount, "items": items,
    })
    idx = np.concatenate([np.arange(n), nokey])
    key = np.concatenate([np.arange(n, dtype=float), rng.random(len(nokey)) * max(n, 1)])
    order = np.argsort(key, kind="stable")
    full = table.take(pa.array(idx[order]))
    no_id = np.concatenate([np.zeros(n, bool), np.ones(len(nokey), bool)])[order]
    full = full.set_column(full.schema.get_field_index("no_id"), "no_id", pa.array(no_id))
    full = full.append_column("pos", pa.array(np.arange(len(idx), dtype=np.int64)))
    raw: list[str] = []
    if len(broken):
        part = table.take(pa.array(broken)).append_column("pos", pa.array(np.arange(len(broken), dtype=np.int64)))
        con.register("_ordb", part)
        raw = D.break_json(rng, render_lines(con, ORDER_SQL.format(table="_ordb"), "json", scratch))
        con.unregister("_ordb")
    con.register("_ord", full)
    with LandingFile(con, path, "json") as f:
        f.write(ORDER_SQL.format(table="_ord"), len(idx), raw, rng)
    con.unregister("_ord")
    return len(idx) + len(raw)
