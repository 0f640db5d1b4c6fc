"""Orders (JSONL) and pixel events (JSONL.gz): dirt planting and rendering to text.

Rows are numbers (person, product, cookie and record numbers); `render` turns them into JSON
lines with Arrow string kernels: ids and timestamps from numpy formatting, strings from
JSON-quoted dictionaries built once, low-cardinality parts rendered once per distinct
combination. No Python code runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from personalization.generate import activity as A
from personalization.generate import dirt as D
from personalization.generate import render as R
from personalization.generate.vocab import SHOP_DOMAIN
from personalization.generate.writers import LandingFile

BASE_URL = f"https://www.{SHOP_DOMAIN}/"
STATUSES = ("placed", "cancelled", "refunded")
_EVENT_ID = 31  # hash purpose of event ids


@dataclass
class Dictionaries:
    """Strings that numeric columns index into (`*_q`: JSON-quoted, last entry `null`)."""

    seed: int
    start_s: int
    cookie_q: pa.Array  # anonymous_id per cookie number
    account_id_q: pa.Array  # customer_id per shop rid
    account_email: pa.Array  # raw (unquoted, may be null) e-mail per shop rid
    person_email: pa.Array  # raw e-mail per person (guest checkouts)
    contact_sha_q: pa.Array  # email_sha256 per CRM rid
    sku: list[str]  # catalogue SKUs, then unknown SKUs
    sku_q: pa.Array
    category: tuple[str, ...]
    city: list[str]
    country: list[str]
    device: tuple[str, ...]
    user_agent: list[str]
    ua_offset: np.ndarray  # per device: first user agent and count
    ua_count: np.ndarray
    rendered: dict[str, dict] = field(default_factory=dict)  # by_combination caches

    def cache(self, name: str) -> dict:
        return self.rendered.setdefault(name, {})


_CAMPAIGN_BASE = -100_000  # campaign day offsets are shifted by this to be >= 0


def _event_middle(d: Dictionaries):
    """Renders `,"event_type":..,"url":"<url>` (purchase URLs end where the order id goes)."""

    def render(etype: int, product: int, campaign: int, variant: int, page_cat: int) -> str:
        kind = A.EVENT_TYPES[etype]
        sku = d.sku[product] if product >= 0 else None
        cmp = None
        if campaign >= 0:
            day = np.datetime64(d.start_s // 86400 + _CAMPAIGN_BASE + campaign, "D")
            cmp = "cmp-" + str(day).replace("-", "")
        var = "AB"[variant] if variant >= 0 else None
        cat = d.category[page_cat] if page_cat >= 0 else None
        url = BASE_URL + {
            "page_view": ("c/" + cat if cat else "") + ("?utm_source=email&utm_campaign=" + cmp if cmp else ""),
            "product_view": "p/" + (sku or "").lower(),
            "search": "search?q=" + (cat or "sale"),
            "add_to_cart": "cart",
            "checkout_start": "checkout",
            "purchase": "checkout/complete?order=",
            "login": "account/login",
            "email_click": f"?utm_source=email&utm_campaign={cmp}&utm_content={var}",
            "email_open": "",
        }[kind]
        if kind == "email_open":
            url_text = "null"
        else:
            url_text = R.json_text(url)[:-1]  # left open: purchase URLs continue
        return (f',"event_type":"{kind}","sku":{R.json_text(sku)},"campaign_id":{R.json_text(cmp)},'
                f'"variant":{R.json_text(var)},"url":{url_text}')

    return render


def _event_tail(d: Dictionaries):
    def render(country: int, city: int, device: int, ua: int) -> str:
        return (f',"country":{R.json_text(d.country[country])},'
                f'"city":{R.json_text(d.city[city] if city >= 0 else None)},'
                f'"device":{R.json_text(d.device[device] if device >= 0 else None)},'
                f'"user_agent":{R.json_text(d.user_agent[ua] if ua >= 0 else None)}}}\n')

    return render


def render_events(d: Dictionaries, f: dict[str, np.ndarray]) -> pa.Array:
    """JSON lines (newline-terminated) of an event frame, in contract key order."""
    eid = R.uuid_text(d.seed, _EVENT_ID, f["id_day"], f["seq"])
    eid = pc.if_else(pa.array(f["no_id"]), R.NULL, R.concat('"', eid, '"'))
    date, hms = R.iso_pieces(f["occurred_s"])
    campaign = np.where(f["campaign"] < A.NEVER, f["campaign"] - _CAMPAIGN_BASE, -1)
    middle = R.by_combination([f["etype"], f["product"], campaign, f["variant"], f["page_cat"]],
                              _event_middle(d), d.cache("event_middle"))
    # The URL string was left open by `middle` (except for e-mail opens, which have none).
    url_end = pc.if_else(pa.array(f["etype"] != A.EVENT_TYPES.index("email_open")), '"', "")
    is_buy = f["order_no"] >= 0
    if is_buy.any():
        order_id = R.concat("ORD-", pc.utf8_lpad(R.number_text(f["order_no"]), 9, "0"), '"')
        url_end = pc.if_else(pa.array(is_buy), order_id, url_end)
    device = np.asarray(f["device"], dtype=np.int64)
    ua = np.where(device >= 0, d.ua_offset[device] + f["ua"] % d.ua_count[device], -1)
    tail = R.by_combination([f["country"], f["city"], device, ua], _event_tail(d), d.cache("event_tail"))
    return R.concat('{"event_id":', eid, ',"occurred_at":"', date, "T", hms, 'Z","anonymous_id":',
                    R.lookup(d.cookie_q, f["cookie"]), ',"customer_id":', R.lookup(d.account_id_q, f["cust_rid"]),
                    ',"email_sha256":', R.lookup(d.contact_sha_q, f["sha_rid"]), middle, url_end, tail)


class EventStream:
    """Plants dirt into a day's events and appends them to a pixel file."""

    def __init__(self, dicts: Dictionaries, n_products: int):
        self.dicts, self.n_products = dicts, n_products
        self.held: dict[str, np.ndarray] | None = None  # late events for the next delivery
        self.cookie_seen = np.zeros(len(dicts.cookie_q) - 1, dtype=bool)

    def _frame(self, ev: A.Events, id_day: int) -> dict[str, np.ndarray]:
        n = len(ev)
        f = {k: getattr(ev, k) for k in ("occurred_s", "cookie", "cust_rid", "sha_rid", "etype",
                                          "product", "campaign", "variant", "order_no", "page_cat",
                                          "city", "country", "device", "ua")}
        f["id_day"] = np.full(n, id_day, dtype=np.int32)
        f["seq"] = np.arange(n, dtype=np.int32)
        f["no_id"] = np.zeros(n, dtype=bool)
        return f

    def write(self, out: LandingFile, ev: A.Events, id_day: int, ds: str, day_end_s: int,
              rng: np.random.Generator, log: D.DirtLog, hold_late: bool, release_late: bool,
              force: bool) -> int:
        """Append one simulated day of events (with dirt) to `out`; returns lines written."""
        f = self._frame(ev, id_day)
        n = len(f["seq"])
        if hold_late:  # at-least-once tracking: some events arrive with the next delivery
            late = D.pick(rng, n, "late_event", force)
            keep = np.ones(n, dtype=bool)
            keep[late] = False
            self.held, f = _take(f, late), _take(f, keep)
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
        # The file's rows are taken from `f` chunk by chunk, not copied at once (memory).
        rows, no_id = idx[order], order >= n + len(dup)
        del idx, key, order
        log.add(ds, "pixel/events", "future_timestamp", len(future))
        log.add(ds, "pixel/events", "unknown_sku", len(unknown))
        log.add(ds, "pixel/events", "duplicate_event_id", len(dup))
        log.add(ds, "pixel/events", "missing_key", len(nokey))
        log.add(ds, "pixel/events", "malformed_line", len(broken))
        self.cookie_seen[f["cookie"]] = True
        raw = D.break_json(rng, _text_lines(render_events(self.dicts, _take(f, broken)))) if len(broken) else []
        m = len(rows)
        out.write_lines(lambda lo, hi: render_events(self.dicts, {**_take(f, rows[lo:hi]), "no_id": no_id[lo:hi]}),
                        m, raw, rng)
        return m + len(raw)


def _take(frame: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in frame.items()}


def _text_lines(lines: pa.Array) -> list[str]:
    """A few rendered lines as Python strings without their newline (to break them)."""
    return [line[:-1] for line in lines.to_pylist()]


def render_orders(d: Dictionaries, f: dict[str, np.ndarray]) -> pa.Array:
    """JSON lines of an order frame (items as `item_*` arrays grouped by `item_offsets`)."""
    n = len(f["order_no"])
    order_id = R.concat('"ORD-', pc.utf8_lpad(R.number_text(f["order_no"]), 9, "0"), '"')
    order_id = pc.if_else(pa.array(f["no_id"]), R.NULL, order_id)
    rid, person = f["rid"], f["person"]
    email = pc.if_else(pa.array(rid >= 0), d.account_email.take(pa.array(np.maximum(rid, 0))),
                       d.person_email.take(pa.array(person)))
    if f["bad_email"].any():
        broken = pc.replace_substring(pc.fill_null(email, "guest"), "@", " at ")
        email = pc.if_else(pa.array(f["bad_email"]), broken, email)
    date, hms = R.iso_pieces(f["ordered_s"])
    state = R.by_combination([f["status"], f["currency"]], lambda s, c: (
        f'Z","status":"{STATUSES[s]}","currency":"{A.CURRENCIES[c]}","total_amount":'))
    money = R.money_text(f["total"])
    total = pc.if_else(pa.array(f["bad_amount"] == 1), R.concat('"', pc.replace_substring(money, ".", ","), '"'),
                       money)
    total = pc.if_else(pa.array(f["bad_amount"] == 2), '"N/A"', total)
    offsets = f["item_offsets"]
    items = R.concat('{"sku":', R.lookup(d.sku_q, f["item_product"]), ',"quantity":',
                     R.number_text(f["item_qty"]), ',"unit_price":', R.money_text(f["item_price"]), "}")
    items = pc.binary_join(pa.ListArray.from_arrays(pa.array((offsets - offsets[0]).astype(np.int32)), items), ",")
    assert len(items) == n
    return R.concat('{"order_id":', order_id, ',"customer_id":', R.lookup(d.account_id_q, rid),
                    ',"email":', pc.fill_null(R.json_quote(email), R.NULL), ',"ordered_at":"', date, "T", hms,
                    state, total, ',"items":[', items, "]}\n")


def _order_frame(o: A.Orders, idx: np.ndarray, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Orders `idx` (repeats allowed) as a frame with their items and the per-order `extra`."""
    sub = o.take(idx)
    return {"order_no": sub.order_no, "rid": sub.rid, "person": sub.person, "ordered_s": sub.ordered_s,
            "status": sub.status, "item_offsets": sub.item_offsets, "item_product": sub.item_product,
            "item_qty": sub.item_qty, "item_price": sub.item_price,
            **{k: v[idx] for k, v in extra.items()}}


def _slice_orders(f: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    offsets = f["item_offsets"]
    items = slice(offsets[lo], offsets[hi])
    return {k: (v[lo:hi + 1] if k == "item_offsets" else v[items] if k.startswith("item_") else v[lo:hi])
            for k, v in f.items()}


def write_orders(out: LandingFile, orders: A.Orders, pop_country: np.ndarray, dicts: Dictionaries, ds: str,
                 day_end_s: int, rng: np.random.Generator, log: D.DirtLog, force: bool) -> int:
    """Append a batch of one day's orders, with its dirt, to `out`; returns lines written."""
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
    for kind, count in (("invalid_email", bad_email.sum()), ("wrong_type", len(wrong)),
                        ("unknown_sku", len(unknown)), ("negative_quantity", len(negative)),
                        ("future_timestamp", len(future)), ("missing_key", len(nokey)),
                        ("malformed_line", len(broken))):
        log.add(ds, "shop/orders", kind, count)
    dirty = A.Orders(**{**o.__dict__, "item_qty": qty, "item_product": product, "ordered_s": ordered_s})
    extra = {"bad_email": bad_email, "bad_amount": bad_amount, "total": total,
             "currency": A.COUNTRY_CURRENCY[pop_country[o.person]]}
    idx = np.concatenate([np.arange(n), nokey])
    key = np.concatenate([np.arange(n, dtype=float), rng.random(len(nokey)) * max(n, 1)])
    order = np.argsort(key, kind="stable")
    full = _order_frame(dirty, idx[order], extra)
    full["no_id"] = np.concatenate([np.zeros(n, bool), np.ones(len(nokey), bool)])[order]
    raw: list[str] = []
    if len(broken):
        part = _order_frame(dirty, broken, extra)
        part["no_id"] = np.zeros(len(broken), bool)
        raw = D.break_json(rng, _text_lines(render_orders(dicts, part)))
    out.write_lines(lambda lo, hi: render_orders(dicts, _slice_orders(full, lo, hi)), len(idx), raw, rng)
    return len(idx) + len(raw)
