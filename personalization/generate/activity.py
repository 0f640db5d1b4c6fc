"""Orders, browsing sessions, e-mail campaigns: the behaviour that models learn from later.

All arrays are numeric (person, product, cookie and record numbers); strings are attached
when the files are written. One call simulates one day for all alive persons.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from personalization.generate import vocab as V
from personalization.generate.catalog import Catalog
from personalization.generate.population import Population

ORDER_WEEKDAY = np.array([1.05, 1.0, 1.0, 1.0, 1.05, 0.85, 1.15])  # Mon..Sun
SESSION_WEEKDAY = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.15, 1.2])
HOUR_PROFILE = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 3.5, 3.5, 4, 4.5, 4, 3.5, 3.5, 4,
                         4.5, 5, 6, 6.5, 6, 4, 2], dtype=float)
CLICK_RATE = {0: 0.10, 1: 0.15}  # variant A, variant B (B measurably better)
PURCHASE_AFTER_CLICK = 0.12
SEND_HOUR = 6
# Session blocks in the order their events happen.
BLOCKS = ("email_click", "page_view", "login", "search", "product_view", "add_to_cart",
          "checkout_start", "purchase")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase",
               "login", "search", "email_open", "email_click")
BLOCK_TYPE = np.array([EVENT_TYPES.index(b) for b in BLOCKS])
NEVER = 1 << 40
CURRENCIES = ("USD", "GBP", "EUR")
COUNTRY_CURRENCY = np.array([CURRENCIES.index(c[3]) for c in V.COUNTRIES])
FX = np.array([V.FX_FROM_EUR[c] for c in CURRENCIES])


@dataclass
class Orders:
    """A batch of orders; items are `item_*` arrays grouped by `item_offsets`."""

    order_no: np.ndarray
    person: np.ndarray
    rid: np.ndarray  # shop account record, -1 = guest checkout
    ordered_s: np.ndarray
    status: np.ndarray  # 0 placed, 1 cancelled, 2 refunded
    change_day: np.ndarray  # day the status changes (NEVER = does not)
    change_status: np.ndarray
    campaign: np.ndarray  # day offset of the campaign clicked before, or NEVER
    item_offsets: np.ndarray
    item_product: np.ndarray
    item_qty: np.ndarray
    item_price: np.ndarray

    def __len__(self) -> int:
        return len(self.order_no)

    def take(self, idx: np.ndarray) -> Orders:
        counts = np.diff(self.item_offsets)[idx]
        starts = self.item_offsets[:-1][idx]
        new_off = np.concatenate([[0], np.cumsum(counts)])
        item_idx = np.repeat(starts - new_off[:-1], counts) + np.arange(new_off[-1])
        per_order = {f.name: getattr(self, f.name)[idx] for f in fields(self)
                     if not f.name.startswith("item_")}
        return Orders(**per_order, item_offsets=new_off, item_product=self.item_product[item_idx],
                      item_qty=self.item_qty[item_idx], item_price=self.item_price[item_idx])

    @staticmethod
    def concat(batches: list[Orders]) -> Orders:
        batches = [b for b in batches if len(b)] or batches[:1]
        out = {}
        for f in fields(Orders):
            if f.name == "item_offsets":
                counts = np.concatenate([np.diff(b.item_offsets) for b in batches])
                out[f.name] = np.concatenate([[0], np.cumsum(counts)])
            else:
                out[f.name] = np.concatenate([getattr(b, f.name) for b in batches])
        return Orders(**out)


def empty_orders() -> Orders:
    z = np.zeros(0, dtype=np.int64)
    return Orders(z, z, z, z, z, z, z, z, np.zeros(1, dtype=np.int64), z, z, np.zeros(0))


def seconds_of_day(rng: np.random.Generator, pop: Population, persons: np.ndarray) -> np.ndarray:
    """Mostly around the person's own preferred hour, otherwise the shop's hourly profile."""
    own = rng.random(len(persons)) < 0.65
    hour = np.where(own, pop.pref_hour[persons] + rng.normal(0, 1.2, len(persons)),
                    rng.choice(24, len(persons), p=HOUR_PROFILE / HOUR_PROFILE.sum())
                    + rng.random(len(persons)))
    return (np.clip(hour, 0.0, 23.3) * 3600).astype(np.int64)


def preferred_categories(rng: np.random.Generator, pop: Population, persons: np.ndarray) -> np.ndarray:
    """The first preference (45%), the second (35%) or any category; filled in place (per-event sized)."""
    u = rng.random(len(persons))
    out = rng.integers(0, len(V.CATEGORIES), len(persons))
    second = u < 0.8
    out[second] = pop.cat2[persons[second]]
    first = u < 0.45
    out[first] = pop.cat1[persons[first]]
    return out


def draw_orders(rng: np.random.Generator, pop: Population, cat: Catalog, shop_primary: np.ndarray,
                shop_dup: np.ndarray, shop_created_day: np.ndarray, persons: np.ndarray,
                ordered_s: np.ndarray, day: np.ndarray, campaign: np.ndarray, first_no: int) -> Orders:
    """Orders of `persons` at `ordered_s` (day offsets `day`), numbered from `first_no`."""
    n = len(persons)
    n_items = 1 + np.minimum(rng.poisson(0.35 * pop.spend[persons]), 5)
    offsets = np.concatenate([[0], np.cumsum(n_items)])
    item_order = np.repeat(np.arange(n), n_items)
    first = offsets[:-1][item_order] == np.arange(offsets[-1])
    max_day = int(day.max()) if n else 0
    product = cat.sample(rng, preferred_categories(rng, pop, persons[item_order]), max_day)
    # Later items are often companions of the first one: the co-bought structure.
    first_product = product[offsets[:-1]][item_order]
    companion = cat.companions[first_product, rng.integers(0, 3, len(product))]
    use_comp = ~first & (rng.random(len(product)) < 0.5) & cat.sellable(max_day)[companion]
    product = np.where(use_comp, companion, product)
    qty = 1 + rng.poisson(0.12 * pop.spend[persons[item_order]])
    currency = COUNTRY_CURRENCY[pop.country[persons]]
    discount = np.where(rng.random(len(product)) < 0.1, 0.8, 1.0)
    price = np.round(cat.price[product] * FX[currency[item_order]] * discount, 2)

    prim, dup = shop_primary[persons], shop_dup[persons]
    has = (prim >= 0) & (shop_created_day[np.maximum(prim, 0)] <= day)
    use_dup = has & (dup >= 0) & (shop_created_day[np.maximum(dup, 0)] <= day) & (rng.random(n) < 0.1)
    guest = rng.random(n) < 0.05
    rid = np.where(has & ~guest, np.where(use_dup, dup, prim), -1)
    u = rng.random(n)
    change_status = np.where(u < 0.03, 1, np.where(u < 0.065, 2, 0))
    change_day = np.where(change_status == 1, day + rng.integers(0, 3, n),
                          np.where(change_status == 2, day + rng.integers(3, 21, n), NEVER))
    return Orders(order_no=first_no + np.arange(n), person=persons, rid=rid, ordered_s=ordered_s,
                  status=np.zeros(n, dtype=np.int64), change_day=change_day,
                  change_status=change_status, campaign=campaign, item_offsets=offsets,
                  item_product=product, item_qty=qty, item_price=price)


def history_orders(rng: np.random.Generator, pop: Population, cat: Catalog, first_day: int,
                   end_day: int, start_s: int, **accounts) -> tuple[np.ndarray, np.ndarray]:
    """Persons and times of orders in [first_day, end_day): a thinned Poisson process per person."""
    lo = np.maximum(pop.born_day, first_day).astype(float)
    hi = np.minimum(pop.churn_day, end_day)
    span = np.maximum(hi - lo, 0.0)
    peak = ORDER_WEEKDAY.max()
    counts = rng.poisson(pop.lam * span * peak)
    persons = np.repeat(np.arange(pop.n), counts)
    t_day = lo[persons] + rng.random(len(persons)) * span[persons]
    day = np.floor(t_day).astype(np.int64)
    weekday = (day + accounts["start_weekday"]) % 7
    keep = rng.random(len(persons)) < ORDER_WEEKDAY[weekday] / peak
    persons, day = persons[keep], day[keep]
    ordered_s = start_s + day * 86400 + seconds_of_day(rng, pop, persons)
    order = np.lexsort((persons, ordered_s))
    return persons[order], ordered_s[order]


# The smallest safe integer types of event columns (a backfill day holds millions); others int64.
EVENT_DTYPES = {"etype": np.int8, "variant": np.int8, "page_cat": np.int8, "country": np.int8,
                "device": np.int8, "product": np.int16, "cookie": np.int32, "cust_rid": np.int32,
                "sha_rid": np.int32, "city": np.int32, "ua": np.int32, "person": np.int32}


def small(column: str, values: np.ndarray) -> np.ndarray:
    """`values` in the type of event column `column` (no copy if already in it)."""
    return values.astype(EVENT_DTYPES.get(column, np.int64), copy=False)


@dataclass
class Events:
    """Numeric pixel events of one day (before dirt)."""

    occurred_s: np.ndarray
    cookie: np.ndarray
    person: np.ndarray
    cust_rid: np.ndarray  # -1 = not logged in
    sha_rid: np.ndarray  # CRM contact whose e-mail hash the visit carries, -1 = none
    etype: np.ndarray  # index into EVENT_TYPES
    product: np.ndarray  # -1 = none
    campaign: np.ndarray  # campaign day offset, NEVER = none
    variant: np.ndarray  # 0 A, 1 B, -1 none
    order_no: np.ndarray  # -1 = none
    page_cat: np.ndarray  # -1 = none
    city: np.ndarray  # -1 = unknown
    country: np.ndarray
    device: np.ndarray
    ua: np.ndarray

    def compact(self) -> Events:
        """The same events in the types of `EVENT_DTYPES`."""
        return Events(**{f.name: small(f.name, getattr(self, f.name)) for f in fields(self)})

    def __len__(self) -> int:
        return len(self.occurred_s)

    @staticmethod
    def concat_by_time(parts: list[Events]) -> Events:
        """The parts' events in one frame, stably sorted by time; one column at a time (memory)."""
        order = np.argsort(np.concatenate([p.occurred_s for p in parts]), kind="stable")
        return Events(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])[order] for f in fields(Events)})


def session_events(rng: np.random.Generator, pop: Population, cat: Catalog, day: int, s: dict,
                   orders: Orders, day_end_s: int) -> Events:
    """Expand sessions (dict of per-session arrays) into events, block by block.

    A backfill day has millions of events: the helpers drop their per-event intermediates on
    return, and session columns are repeated per event in their compact types.
    """
    sess, starts, block, j = _layout(s)
    t = _event_times(rng, s["start"], sess, starts, day_end_s)
    person = _per_event(s, "person", sess)
    product, order_no = _event_products(rng, pop, cat, day, orders, s["order_pos"][sess], block, j, person)
    del j
    logged_in = (s["login"] > 0)[sess] & (block >= 2)
    return _finish(rng, pop, Events(
        occurred_s=t, cookie=_per_event(s, "cookie", sess), person=person,
        cust_rid=np.where(logged_in, _per_event(s, "login_rid", sess, "cust_rid"), -1),
        sha_rid=_per_event(s, "sha_rid", sess), etype=small("etype", BLOCK_TYPE)[block], product=product,
        campaign=_per_event(s, "campaign", sess), variant=_per_event(s, "variant", sess), order_no=order_no,
        page_cat=_page_categories(rng, pop, block, person), city=np.zeros(0), country=np.zeros(0),
        device=np.zeros(0), ua=np.zeros(0)))


def _layout(s: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per event: its session, its block and its number within the block; and each session's first event.

    Events are laid out session by session, block by block: repeat each block's number by its
    count, and number the events within their block.
    """
    n_sess = len(s["person"])
    counts = np.stack([s["click"], np.ones(n_sess, dtype=np.int64), s["login"], s["search"],
                       s["pv"], s["atc"], s["chk"], s["buy"]], axis=1)
    n_ev = counts.sum(1)
    sess = np.repeat(np.arange(n_sess, dtype=np.int32), n_ev)
    starts = np.concatenate([[0], np.cumsum(n_ev)[:-1]])
    flat = counts.ravel()
    block = np.repeat(np.tile(np.arange(counts.shape[1], dtype=np.int8), n_sess), flat)
    block_start = np.concatenate([[0], np.cumsum(flat)[:-1]])
    j = np.arange(len(sess)) - np.repeat(block_start, flat)
    return sess, starts, block, j


def _event_times(rng: np.random.Generator, start: np.ndarray, sess: np.ndarray, starts: np.ndarray,
                 day_end_s: int) -> np.ndarray:
    """The session's start plus exponential gaps between its events, cut at the end of the day."""
    gaps = rng.exponential(40.0, len(sess)).astype(np.int64) + 1
    csum = np.cumsum(gaps)
    t = start[sess] + csum - csum[starts][sess]
    return np.minimum(t, day_end_s - 1)


def _per_event(s: dict, key: str, sess: np.ndarray, column: str | None = None) -> np.ndarray:
    """Session column `key` for each event, in the type of event column `column` (default `key`)."""
    return small(column or key, s[key])[sess]


def _event_products(rng: np.random.Generator, pop: Population, cat: Catalog, day: int, orders: Orders,
                    opos: np.ndarray, block: np.ndarray, j: np.ndarray,
                    person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Products and order numbers: order sessions show the ordered items, browsing samples the preferences."""
    product = np.full(len(block), -1, dtype=EVENT_DTYPES["product"])
    is_pv, is_atc, is_buy = block == 4, block == 5, block == 7
    in_order = opos >= 0
    order_no = np.full(len(block), -1, dtype=np.int64)
    if len(orders):
        rows = np.flatnonzero(in_order & (is_pv | is_atc | is_buy))
        item_at = orders.item_offsets[:-1][opos[rows]] + np.where(is_buy[rows], 0, j[rows])
        product[rows] = orders.item_product[item_at]
        order_no[is_buy] = orders.order_no[np.maximum(opos[is_buy], 0)]
    browse_pv = is_pv & ~in_order
    product[browse_pv] = cat.sample(rng, preferred_categories(rng, pop, person[browse_pv]), day)
    browse_atc = np.flatnonzero(is_atc & ~in_order)
    product[browse_atc] = product[browse_atc - 1]  # the product viewed just before
    return product, order_no


def _page_categories(rng: np.random.Generator, pop: Population, block: np.ndarray,
                     person: np.ndarray) -> np.ndarray:
    """Half the landing pages show a preferred category; a search always names one (at least cat1)."""
    shown = rng.random(len(block)) < 0.5
    page_cat = preferred_categories(rng, pop, person)
    page_cat[~(shown & ((block == 1) | (block == 3)))] = -1
    search = np.flatnonzero(block == 3)
    page_cat[search] = np.maximum(page_cat[search], pop.cat1[person[search]])
    return small("page_cat", page_cat)


def _finish(rng: np.random.Generator, pop: Population, ev: Events) -> Events:
    """Geo and device columns: the person's city; device and browser stay with the cookie.

    Returned compact: a day's parts are concatenated and sorted in the small types.
    """
    m = len(ev.person)
    ev.city = np.where(rng.random(m) < 0.93, pop.city_idx[ev.person], -1)
    ev.country = pop.country[ev.person]
    main = ev.cookie == pop.cookie_start[ev.person]
    ev.device = np.where(main, pop.device[ev.person], (ev.cookie.astype(np.int64) * 31 + 7) % len(V.DEVICES))
    ev.ua = ev.cookie  # the same array until the day's parts are concatenated
    return ev.compact()


def pick_cookie(rng: np.random.Generator, pop: Population, persons: np.ndarray) -> np.ndarray:
    main = rng.random(len(persons)) < 0.7
    other = (rng.random(len(persons)) * pop.n_cookies[persons]).astype(np.int64)
    return pop.cookie_start[persons] + np.where(main, 0, other)
