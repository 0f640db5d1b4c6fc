"""One simulated day: campaign e-mails, organic and e-mail-driven orders, browsing sessions."""

from __future__ import annotations

import duckdb
import numpy as np

from personalization.generate import activity as A
from personalization.generate.catalog import Catalog
from personalization.generate.population import Population

CAMPAIGN_EVERY_DAYS = 3


class Simulator:
    """Holds the population and record numbering; `day(d)` returns that day's orders and events."""

    def __init__(self, con: duckdb.DuckDBPyConnection, pop: Population, cat: Catalog,
                 shop_primary: np.ndarray, shop_dup: np.ndarray, shop_created_day: np.ndarray,
                 seed: int, start_s: int, start_weekday: int):
        self.con, self.pop, self.cat, self.seed = con, pop, cat, seed
        self.accounts = {"shop_primary": shop_primary, "shop_dup": shop_dup,
                         "shop_created_day": shop_created_day}
        self.start_s, self.start_weekday = start_s, start_weekday
        self.next_order = 1

    def history(self, first_day: int, end_day: int) -> A.Orders:
        """Orders placed in [first_day, end_day) without pixel data (the old order history)."""
        rng = np.random.default_rng([self.seed, 4, first_day + 1_000_000])
        persons, ordered_s = A.history_orders(rng, self.pop, self.cat, first_day, end_day,
                                              self.start_s, start_weekday=self.start_weekday)
        day = (ordered_s - self.start_s) // 86400
        orders = A.draw_orders(rng, self.pop, self.cat, **self.accounts, persons=persons,
                               ordered_s=ordered_s, day=day,
                               campaign=np.full(len(persons), A.NEVER), first_no=self.next_order)
        self.next_order += len(orders)
        return orders

    def _campaign(self, rng, d: int, alive: np.ndarray, day_s: int):
        aud = self.con.execute(
            "SELECT rid, person FROM crm_contacts WHERE email_sha256 IS NOT NULL AND opt_in = 1 "
            f"AND unsub_s < 0 AND created_day < {d} ORDER BY rid").fetchnumpy()
        rid, person = aud["rid"].astype(np.int64), aud["person"].astype(np.int64)
        pop = self.pop
        variant = rng.integers(0, 2, len(rid))
        opened = rng.random(len(rid)) < pop.open_rate[person] * alive[person]
        rid, person, variant = rid[opened], person[opened], variant[opened]
        open_t = day_s + np.maximum(A.seconds_of_day(rng, pop, person), (A.SEND_HOUR + 0.2) * 3600).astype(np.int64)
        ctr = np.minimum(np.where(variant == 1, A.CLICK_RATE[1], A.CLICK_RATE[0]) * pop.click_rate[person], 0.9)
        clicked = rng.random(len(rid)) < ctr
        click_t = open_t + rng.exponential(120, len(rid)).astype(np.int64) + 5
        buys = clicked & (rng.random(len(rid)) < np.where(pop.buyer[person], A.PURCHASE_AFTER_CLICK, 0.03))
        n = len(rid)
        opens = A._finish(rng, pop, A.Events(
            occurred_s=open_t, cookie=pop.cookie_start[person], person=person,
            cust_rid=np.full(n, -1), sha_rid=rid, etype=np.full(n, A.EVENT_TYPES.index("email_open")),
            product=np.full(n, -1), campaign=np.full(n, d), variant=variant, order_no=np.full(n, -1),
            page_cat=np.full(n, -1), city=np.zeros(0), country=np.zeros(0), device=np.zeros(0),
            ua=np.zeros(0)))
        return opens, {"rid": rid, "person": person, "variant": variant, "click_t": click_t,
                       "clicked": clicked, "buys": buys}

    def day(self, d: int) -> tuple[A.Orders, A.Events]:
        """Simulate day offset `d` (0 = the start date)."""
        rng = np.random.default_rng([self.seed, 10, d + 1_000_000])
        pop, cat = self.pop, self.cat
        day_s = self.start_s + d * 86400
        day_end = day_s + 86400
        weekday = (self.start_weekday + d) % 7
        alive = pop.alive(d)
        parts: list[A.Events] = []
        sessions: list[dict] = []
        # E-mail campaign: opens, clicks (sessions from the e-mail link), purchases after clicks.
        mail_persons = mail_t = mail_rid = mail_variant = np.zeros(0, dtype=np.int64)
        if d % CAMPAIGN_EVERY_DAYS == 0:
            opens, c = self._campaign(rng, d, alive, day_s)
            parts.append(opens)
            only_click = c["clicked"] & ~c["buys"]
            k = int(only_click.sum())
            atc = (rng.random(k) < 0.2).astype(np.int64)
            sessions.append(self._sessions(
                c["person"][only_click], np.minimum(c["click_t"][only_click], day_end - 1800),
                click=np.ones(k), pv=1 + rng.poisson(1.0, k), atc=atc,
                chk=atc * (rng.random(k) < 0.3), sha_rid=c["rid"][only_click], campaign=d,
                variant=c["variant"][only_click], rng=rng, d=d))
            b = c["buys"]
            mail_persons, mail_t, mail_rid, mail_variant = c["person"][b], c["click_t"][b], c["rid"][b], c["variant"][b]
        # Orders: organic (rate x weekday) plus the ones after an e-mail click.
        counts = rng.poisson(pop.lam * alive * A.ORDER_WEEKDAY[weekday])
        org_persons = np.repeat(np.arange(pop.n), counts)
        org_t = day_s + A.seconds_of_day(rng, pop, org_persons)
        persons = np.concatenate([org_persons, mail_persons])
        times = np.minimum(np.concatenate([org_t, mail_t + 300]), day_end - 60)
        campaign = np.concatenate([np.full(len(org_persons), A.NEVER), np.full(len(mail_persons), d)])
        sha_rid = np.concatenate([np.full(len(org_persons), -1), mail_rid])
        variant = np.concatenate([np.full(len(org_persons), -1), mail_variant])
        order = np.lexsort((persons, times))
        persons, times, campaign, sha_rid, variant = (a[order] for a in (persons, times, campaign, sha_rid, variant))
        orders = A.draw_orders(rng, pop, cat, **self.accounts, persons=persons, ordered_s=times,
                               day=np.full(len(persons), d), campaign=campaign, first_no=self.next_order)
        self.next_order += len(orders)
        # Order sessions (10% of organic orders come from the app, without pixel data).
        tracked = np.flatnonzero((campaign != A.NEVER) | (rng.random(len(orders)) < 0.9))
        n_items = np.diff(orders.item_offsets)[tracked]
        from_mail = campaign[tracked] != A.NEVER
        sessions.append(self._sessions(
            persons[tracked], np.maximum(times[tracked] - 60 * (2 * n_items + 3), day_s),
            click=from_mail, pv=n_items, atc=n_items, chk=np.ones(len(tracked)),
            buy=np.ones(len(tracked)), search=rng.random(len(tracked)) < 0.2,
            login_rid=orders.rid[tracked], sha_rid=sha_rid[tracked],
            campaign=np.where(from_mail, d, A.NEVER), variant=variant[tracked],
            order_pos=tracked, rng=rng, d=d))
        # Browsing sessions: views, searches, carts that are often abandoned.
        counts = rng.poisson(pop.sess_rate * alive * A.SESSION_WEEKDAY[weekday])
        bp = np.repeat(np.arange(pop.n), counts)
        k = len(bp)
        atc = (rng.random(k) < 0.25).astype(np.int64)
        prim = self.accounts["shop_primary"][bp]
        can_login = (prim >= 0) & (self.accounts["shop_created_day"][np.maximum(prim, 0)] <= d)
        sessions.append(self._sessions(
            bp, day_s + A.seconds_of_day(rng, pop, bp), pv=1 + rng.poisson(2.0, k), atc=atc,
            chk=atc * (rng.random(k) < 0.4), search=rng.random(k) < 0.3,
            login_rid=np.where(can_login & (rng.random(k) < 0.3), prim, -1), rng=rng, d=d))
        merged = {key: np.concatenate([s[key] for s in sessions]) for key in sessions[0]}
        ev = A.session_events(rng, pop, cat, d, merged, orders, day_end)
        # The order is placed when its purchase event fires.
        buy = ev.order_no >= 0
        if buy.any():
            orders.ordered_s[ev.order_no[buy] - orders.order_no[0]] = ev.occurred_s[buy]
        orders = orders.take(np.argsort(orders.ordered_s, kind="stable"))
        parts.append(ev)
        return orders, A.Events.concat_by_time(parts)

    def _sessions(self, person, start, rng, d, click=0, pv=1, atc=0, chk=0, buy=0, search=0,
                  login_rid=-1, sha_rid=-1, campaign=A.NEVER, variant=-1, order_pos=-1) -> dict:
        n = len(person)
        full = lambda v: np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy()  # noqa: E731
        login_rid = full(login_rid)
        return {"person": person.astype(np.int64), "start": full(start),
                "cookie": A.pick_cookie(rng, self.pop, person), "click": full(click), "pv": full(pv),
                "login": (login_rid >= 0).astype(np.int64), "login_rid": login_rid,
                "search": full(search), "atc": full(atc), "chk": full(chk), "buy": full(buy),
                "sha_rid": full(sha_rid), "campaign": full(campaign), "variant": full(variant),
                "order_pos": full(order_pos)}
