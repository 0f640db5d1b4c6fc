"""What the people do: the catalogue, orders (with later status changes), pixel events
(sessions, logins, email opens and clicks, purchases) and erasure requests. All vectorised:
per-person rates become per-day counts with numpy, and rows are expanded with np.repeat."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .population import HISTORY_DAYS, Options, zipf_choice
from .vocabulary import (
    DEVICES,
    PRODUCT_CATEGORIES,
    PRODUCT_WORDS,
    USER_AGENTS,
)

DAY = 86_400
EVENT_HISTORY_DAYS = 7   # the pixel backfill holds the last week of events
FX = {"EUR": 1.0, "USD": 1.08, "GBP": 0.85}


def build_products(rng: np.random.Generator, days: int, n: int = 400) -> pd.DataFrame:
    """The catalogue: sku, name, category, price, active, launch_day (delivered from then on)."""
    cat = rng.integers(0, len(PRODUCT_CATEGORIES), n)
    word = rng.integers(0, len(PRODUCT_WORDS), n)
    launch = np.where(rng.random(n) < 0.05, rng.integers(0, max(days, 1), n), 0)
    return pd.DataFrame({
        "sku": [f"F-{i:05d}" for i in rng.choice(100_000, n, replace=False)],
        "name": [f"{PRODUCT_WORDS[w]} {PRODUCT_CATEGORIES[c].title()} {i}"
                 for i, (c, w) in enumerate(zip(cat, word, strict=True))],
        "category": np.asarray(PRODUCT_CATEGORIES, dtype=object)[cat],
        "price": np.round(np.exp(rng.normal(3.2, 0.8, n)), 2),
        "active": rng.random(n) > 0.04,
        "launch_day": launch,
    })


def build_orders(people: pd.DataFrame, records: pd.DataFrame, products: pd.DataFrame,
                 days: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders (one row per delivered version: placed, then maybe cancelled/refunded) and items.

    Returns:
        (orders, items): orders has order_id, person, customer_id, email, ordered_s, status,
        currency, total_amount, deliver_day, online; items has order_id, sku, quantity,
        unit_price (one row per line, in line order).
    """
    start = np.maximum(people["appear_day"].to_numpy(), -HISTORY_DAYS)
    span = np.maximum(days - start, 0)
    counts = rng.poisson(people["order_rate"].to_numpy() * span)
    person = np.repeat(np.arange(len(people)), counts)
    day = np.repeat(start, counts) + (rng.random(len(person)) * np.repeat(span, counts)).astype(int)
    n = len(person)
    ordered_s = day * DAY + rng.integers(6 * 3600, 23 * 3600, n)

    # The account an order is placed from: one of the person's shop accounts that exists by
    # then (a duplicate account now and then); 5 % of account holders check out as guests.
    shop = records[records["system"] == "shop"][["person", "record_id", "email", "created_day", "is_duplicate"]]
    shop = shop.sample(frac=1.0, random_state=int(rng.integers(1 << 31)))
    main = shop.sort_values("is_duplicate").drop_duplicates("person")
    dup = shop[shop["is_duplicate"]].drop_duplicates("person")
    acct = pd.Series(main["record_id"].to_numpy(), index=main["person"].to_numpy())
    acct_email = pd.Series(main["email"].to_numpy(), index=main["person"].to_numpy())
    acct_day = pd.Series(main["created_day"].to_numpy(), index=main["person"].to_numpy())
    dup_acct = pd.Series(dup["record_id"].to_numpy(), index=dup["person"].to_numpy())
    dup_day = pd.Series(dup["created_day"].to_numpy(), index=dup["person"].to_numpy())
    customer = acct.reindex(person).to_numpy()
    email = acct_email.reindex(person).to_numpy()
    exists = acct_day.reindex(person).to_numpy() <= day
    customer = np.where(exists, customer, None)
    use_dup = (rng.random(n) < 0.15) & (dup_day.reindex(person).to_numpy() <= day)
    customer = np.where(use_dup, dup_acct.reindex(person).to_numpy(), customer)
    guest = pd.isna(customer) | (rng.random(n) < 0.05)
    customer = np.where(guest, None, customer)
    person_email = people["email"].to_numpy()[person]
    email = np.where(guest | pd.isna(email), person_email, email)
    email = np.where(rng.random(n) < 0.04, None, email)
    # People with no account who never buy as guests have no orders.
    keep = ~guest | people["buys_as_guest"].to_numpy()[person] | people["uses_shop"].to_numpy()[person]
    person, day, ordered_s, customer, email = (a[keep] for a in (person, day, ordered_s, customer, email))
    n = len(person)

    order_id = np.asarray([f"SO-{i:09d}" for i in rng.choice(10 ** 9, n, replace=False)], dtype=object)
    currency = people["currency"].to_numpy()[person]
    lines = 1 + rng.poisson(0.7, n)
    line_order = np.repeat(np.arange(n), lines)
    available = products[products["launch_day"] <= 0]
    sku_idx = zipf_choice(rng, len(line_order), len(available), 0.9)
    qty = 1 + rng.poisson(0.3, len(line_order))
    fx = np.vectorize(FX.get)(currency[line_order])
    unit = np.round(available["price"].to_numpy()[sku_idx] * fx, 2)
    items = pd.DataFrame({"order_id": order_id[line_order],
                          "sku": available["sku"].to_numpy()[sku_idx],
                          "quantity": qty, "unit_price": unit})
    total = np.round(np.bincount(line_order, weights=qty * unit, minlength=n), 2)
    placed = pd.DataFrame({
        "order_id": order_id, "person": person, "customer_id": customer, "email": email,
        "ordered_s": ordered_s, "status": "placed", "currency": currency,
        "total_amount": total, "online": rng.random(n) < 0.85,
    })
    # Status changes: cancelled within 0-2 days, refunded after 3-20; re-delivered that day.
    change = rng.random(n)
    status = np.where(change < 0.06, "cancelled", np.where(change < 0.11, "refunded", "placed"))
    change_day = day + np.where(status == "cancelled", rng.integers(0, 3, n), rng.integers(3, 21, n))
    first = placed.assign(deliver_day=np.maximum(day, 0))
    changed = (status != "placed") & (change_day < days)
    # A change before the backfill is already in the backfill's version.
    before = changed & (change_day <= 0)
    first.loc[before, "status"] = status[before]
    later = placed[changed & ~before].assign(status=status[changed & ~before],
                                             deliver_day=change_day[changed & ~before])
    orders = pd.concat([first, later], ignore_index=True)
    return orders, items


def _sha(emails: np.ndarray) -> np.ndarray:
    return np.asarray([hashlib.sha256(e.strip().lower().encode()).hexdigest() if isinstance(e, str) else None
                       for e in emails], dtype=object)


def build_events(people: pd.DataFrame, records: pd.DataFrame, orders: pd.DataFrame,
                 products: pd.DataFrame, days: int, rng: np.random.Generator,
                 options: Options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pixel events and the cookie -> person truth.

    Returns:
        (events, cookies): events has event_id, occurred_s, anonymous_id, customer_id,
        email_sha256, event_type, sku, campaign_id, variant, url, country, city, device,
        user_agent, deliver_day, person; cookies has anonymous_id, person_id.
    """
    n_people = len(people)
    n_cookies = people["cookies"].to_numpy()
    cookie_owner = np.repeat(np.arange(n_people), n_cookies)
    cookie_ids = np.asarray([f"{i:016x}" for i in rng.choice(1 << 62, len(cookie_owner), replace=False)],
                            dtype=object)
    first_cookie = np.concatenate([[0], np.cumsum(n_cookies)[:-1]])
    device_of_cookie = rng.integers(0, len(DEVICES), len(cookie_owner))
    window = np.arange(-EVENT_HISTORY_DAYS, days)
    alive = people["appear_day"].to_numpy()[:, None] <= window[None, :]
    sessions = rng.poisson(people["visit_rate"].to_numpy()[:, None] * alive)
    s_person, s_col = np.nonzero(sessions)
    s_person = np.repeat(s_person, sessions[s_person, s_col])
    s_day = window[np.repeat(s_col, sessions[np.nonzero(sessions)])]
    n_s = len(s_person)
    pick = np.where(rng.random(n_s) < 0.7, 0, rng.integers(0, 3, n_s) % n_cookies[s_person])
    s_cookie = first_cookie[s_person] + pick
    shop = records[(records["system"] == "shop") & ~records["is_duplicate"]]
    acct = pd.Series(shop["record_id"].to_numpy(), index=shop["person"].to_numpy())
    acct_day = pd.Series(shop["created_day"].to_numpy(), index=shop["person"].to_numpy())
    s_account = acct.reindex(s_person).to_numpy()
    logged_in = (~pd.isna(s_account)) & (acct_day.reindex(s_person).to_numpy() <= s_day) & (rng.random(n_s) < 0.4)
    s_start = s_day * DAY + rng.integers(0, DAY - 3600, n_s)
    length = 1 + rng.poisson(2.5, n_s)
    e_sess = np.repeat(np.arange(n_s), length)
    pos = np.arange(len(e_sess)) - np.repeat(np.cumsum(length) - length, length)
    kinds = np.asarray(["page_view", "product_view", "search", "add_to_cart", "checkout_start"])
    etype = kinds[rng.choice(5, len(e_sess), p=[0.3, 0.45, 0.1, 0.12, 0.03])].astype(object)
    etype[pos == 0] = "page_view"
    etype[(pos == 1) & logged_in[e_sess]] = "login"
    sku = products["sku"].to_numpy()[zipf_choice(rng, len(e_sess), len(products), 0.9)]
    has_sku = np.isin(etype, ["product_view", "add_to_cart"])
    customer = np.where(logged_in[e_sess] & (pos >= 1), s_account[e_sess], None)
    session = pd.DataFrame({
        "occurred_s": s_start[e_sess] + pos * rng.integers(5, 300, len(e_sess)),
        "cookie": s_cookie[e_sess], "customer_id": customer, "email_sha256": None,
        "event_type": etype, "sku": np.where(has_sku, sku, None), "campaign_id": None,
        "variant": None, "person": s_person[e_sess],
        "path": np.where(has_sku, "/p/" + sku.astype(str), np.where(etype == "search", "/search?q=gift", "/")),
    })

    # Purchases: an online order's checkout page carries its order id (cookie -> order).
    placed = orders[(orders["status"] == "placed") & orders["online"].to_numpy()
                    & (orders["ordered_s"] >= -EVENT_HISTORY_DAYS * DAY)].drop_duplicates("order_id")
    buyer = placed["person"].to_numpy()
    purchase = pd.DataFrame({
        "occurred_s": placed["ordered_s"].to_numpy(), "cookie": first_cookie[buyer],
        "customer_id": placed["customer_id"].to_numpy(), "email_sha256": None,
        "event_type": "purchase", "sku": None, "campaign_id": None, "variant": None,
        "person": buyer, "path": "/checkout/complete?order=" + placed["order_id"].astype(str),
    })

    # Email campaigns every third day to opted-in CRM contacts: opens and clicks carry the
    # hash of the address the mail went to.
    crm = records[(records["system"] == "crm") & records["opted_in"].to_numpy() & records["email"].notna()]
    mail = []
    for d in range(-EVENT_HISTORY_DAYS, days):
        if d % 3:
            continue
        got = crm[crm["created_day"] < d]
        opened = got[rng.random(len(got)) < 0.2]
        k = len(opened)
        clicked = rng.random(k) < 0.2
        persons = opened["person"].to_numpy()
        base = pd.DataFrame({
            "occurred_s": d * DAY + 6 * 3600 + rng.integers(0, 16 * 3600, k),
            "cookie": first_cookie[persons], "customer_id": None,
            "email_sha256": _sha(opened["email"].to_numpy()), "event_type": "email_open",
            "sku": None, "campaign_id": f"cmp-{d + 1000}",
            "variant": np.where(rng.random(k) < 0.5, "A", "B"), "person": persons, "path": "/",
        })
        mail += [base, base[clicked].assign(event_type="email_click",
                                            occurred_s=base["occurred_s"][clicked] + 90)]
    events = pd.concat([session, purchase, *mail], ignore_index=True)
    events = events[events["occurred_s"] < days * DAY].reset_index(drop=True)
    owner = cookie_owner
    if options.edge_cases and len(events):
        # Events of customers nobody knows: an account id the shop never delivered, and the
        # hash of an address no record has; each on a cookie of its own (a ghost person).
        k = max(2, len(events) // 500)
        ghost = events.sample(n=min(k, len(events)), random_state=int(rng.integers(1 << 31))).copy()
        ghost_cookie = len(cookie_owner) + np.arange(len(ghost))
        ghost["cookie"] = ghost_cookie
        ghost["customer_id"] = np.where(np.arange(len(ghost)) % 2 == 0,
                                        [f"C9{i:07d}" for i in range(len(ghost))], None)
        ghost["email_sha256"] = np.where(np.arange(len(ghost)) % 2 == 1,
                                         _sha(np.asarray([f"ghost{i}@nowhere.example" for i in range(len(ghost))])),
                                         None)
        ghost["person"] = -1 - np.arange(len(ghost))
        cookie_ids = np.concatenate([cookie_ids, np.asarray(
            [f"9{i:015x}" for i in range(len(ghost))], dtype=object)])
        owner = np.concatenate([cookie_owner, ghost["person"].to_numpy()])
        events = pd.concat([events, ghost], ignore_index=True)
    n = len(events)
    p = events["person"].to_numpy()
    known = p >= 0
    country = np.where(known, people["country"].to_numpy()[np.where(known, p, 0)], None)
    city = np.where(known & (rng.random(n) < 0.8), people["town"].to_numpy()[np.where(known, p, 0)], None)
    cookie = events["cookie"].to_numpy()
    events = events.assign(
        anonymous_id=cookie_ids[cookie],
        device=np.asarray(DEVICES, dtype=object)[device_of_cookie[np.minimum(cookie, len(device_of_cookie) - 1)]],
        user_agent=np.asarray(USER_AGENTS, dtype=object)[cookie % len(USER_AGENTS)],
        url="https://shop.example" + events["path"].astype(str),
        country=country, city=city,
        event_id=[f"ev-{i:012x}" for i in rng.choice(1 << 46, n, replace=False)],
    )
    # Late events: 2 % arrive with the next day's delivery.
    day = events["occurred_s"].to_numpy() // DAY
    late = rng.random(n) < 0.02
    events["deliver_day"] = np.maximum(day + late, 0)
    events = events[events["deliver_day"] < days]
    # At-least-once: 1 % repeated in the same delivery, 0.5 % again the next day.
    again = events[rng.random(len(events)) < 0.01]
    next_day = events[rng.random(len(events)) < 0.005]
    next_day = next_day.assign(deliver_day=next_day["deliver_day"] + 1)
    events = pd.concat([events, again, next_day[next_day["deliver_day"] < days]], ignore_index=True)
    person_ids = people["person_id"].to_numpy()
    cookies = pd.DataFrame({
        "anonymous_id": cookie_ids,
        "person_id": [person_ids[o] if o >= 0 else f"G{-o:07d}" for o in owner],
    })
    return events.drop(columns=["cookie", "path"]), cookies


def build_erasures(records: pd.DataFrame, days: int, rng: np.random.Generator) -> pd.DataFrame:
    """Right-to-erasure requests: a few CRM addresses a day, spelt as the person typed them."""
    crm = records[(records["system"] == "crm") & records["email"].notna()]
    ask = crm[rng.random(len(crm)) < 0.004]
    day = rng.integers(0, max(days, 1), len(ask))
    day = np.maximum(day, ask["created_day"].to_numpy())
    email = ask["email"].to_numpy().copy()
    shout = rng.random(len(email)) < 0.3
    email[shout] = [" " + e.upper() for e in email[shout]]
    out = pd.DataFrame({"email": email, "requested_s": day * DAY + rng.integers(0, DAY, len(ask)),
                        "deliver_day": day})
    return out[out["deliver_day"] < days]
