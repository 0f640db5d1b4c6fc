"""The real persons behind all source records, and their behaviour parameters.

Everything is drawn vectorised with numpy; the string columns are assembled by DuckDB SQL
from vocabulary arrays and numeric draws, so no Python code runs per person.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from personalization.generate import vocab as V

HISTORY_DAYS = 730  # the backfill reaches two years back
KIND_BOTH, KIND_CRM, KIND_SHOP, KIND_ANON = 0, 1, 2, 3
KIND_WEIGHTS = np.array([0.40, 0.25, 0.20, 0.15])
VIP_SHARE = 0.05
MEAN_ORDERS_PER_DAY = 1 / 40  # per active buyer; Gamma heterogeneity around it
MEAN_SESSIONS_PER_DAY = 0.3  # per alive person; Gamma heterogeneity around it
PREF_HOURS = np.array([8.0, 12.5, 19.5, 21.5])
PREF_HOUR_WEIGHTS = np.array([0.25, 0.20, 0.35, 0.20])
HOUSES_PER_STREET = 30  # median street length (house numbers) of the lognormal street model
HOUSEHOLD_SHARE = 0.15  # persons living with another person in the data (spouse, child, flatmate)
SAME_SURNAME_IN_HOUSEHOLD = 0.7
SHARED_LANDLINE = 0.2  # of household members: the home's phone number instead of their own
SECOND_SURNAME_COUNTRIES = ("ES",)  # two surnames (father's, mother's)


@dataclass
class Population:
    """Per-person arrays (index = person number) plus the string table in DuckDB (`persons`)."""

    n: int
    country: np.ndarray  # index into vocab.COUNTRIES
    kind: np.ndarray  # KIND_*
    buyer: np.ndarray  # bool: places orders
    born_day: np.ndarray  # day offset from start when the person first shows up
    churn_day: np.ndarray  # float day offset; no activity from then on
    lam: np.ndarray  # orders per active day
    spend: np.ndarray  # basket size multiplier
    vip: np.ndarray
    cat1: np.ndarray  # preferred categories (cat2 may equal cat1: one preference)
    cat2: np.ndarray
    sess_rate: np.ndarray  # browsing sessions per active day
    open_rate: np.ndarray  # probability to open a campaign e-mail
    click_rate: np.ndarray  # multiplier on the variant's click-through rate
    pref_hour: np.ndarray
    device: np.ndarray  # index into vocab.DEVICES
    cookie_start: np.ndarray  # cookies of person p: cookie_start[p] .. + n_cookies[p]
    n_cookies: np.ndarray
    city_idx: np.ndarray  # index into the flattened city list (for pixel geo)

    def alive(self, day: float) -> np.ndarray:
        """Persons that exist and have not churned at (fractional) day offset `day`."""
        return (self.born_day <= day) & (self.churn_day > day)


def _phone_case_sql() -> str:
    """CASE expression rendering `nsn` (digits) with template `fmt` of the row's `country`."""
    parts = []
    for code, templates in V.PHONE_TEMPLATES.items():
        for f, template in enumerate(templates):
            pieces, pos, literal = [], 1, ""
            for ch in template:
                if ch == "#":
                    if literal:
                        pieces.append(f"'{literal}'")
                        literal = ""
                    pieces.append(f"substr(nsn, {pos}, 1)")
                    pos += 1
                else:
                    literal += ch
            if literal:
                pieces.append(f"'{literal}'")
            parts.append(f"WHEN country = '{code}' AND fmt = {f} THEN {' || '.join(pieces)}")
    return "CASE " + " ".join(parts) + " END"


PHONE_SQL = _phone_case_sql()


def _vocab_tables(con: duckdb.DuckDBPyConnection, vocab: dict[str, V.LocaleVocab]) -> dict:
    """Register flattened vocab lists as DuckDB tables; return offsets and cumulative weights."""
    meta = {}
    for name in ("first_female", "first_male", "last", "streets", "cities"):
        values, offsets, cdfs = [], [], []
        for code, *_ in V.COUNTRIES:
            offsets.append(len(values))
            values.extend(getattr(vocab[code], name).tolist())
            cdfs.append(np.cumsum(getattr(vocab[code], f"p_{name}")))
        table = {"i": pa.array(np.arange(len(values), dtype=np.int64)), "v": pa.array(values, pa.string())}
        if name == "cities":
            table["postcode"] = pa.array([p for c, *_ in V.COUNTRIES for p in vocab[c].postcodes], pa.string())
        con.register(f"_v_{name}", pa.table(table))
        meta[name] = (np.array(offsets), cdfs)
    return meta


def _pick(rng: np.random.Generator, country: np.ndarray, meta: tuple) -> np.ndarray:
    """One entry per person from their country's list, by the list's probabilities."""
    offsets, cdfs = meta
    u = rng.random(len(country))
    out = np.empty(len(country), dtype=np.int64)
    for c, cdf in enumerate(cdfs):
        mask = country == c
        out[mask] = offsets[c] + np.minimum(np.searchsorted(cdf, u[mask] * cdf[-1]), len(cdf) - 1)
    return out


def _house_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """House numbers on streets of lognormal length: small numbers are the most common."""
    length = np.ceil(rng.lognormal(np.log(HOUSES_PER_STREET), 0.9, n))
    return 1 + (rng.random(n) * length).astype(np.int64)


def _phone_numbers(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    """National significant numbers (digits) of valid-looking phone numbers."""
    n = len(country)
    nsn_base = np.array([int(V.PHONE_NSN[c][0] or 0) * 10 ** V.PHONE_NSN[c][1] for c, *_ in V.COUNTRIES])
    rand_digits = np.array([V.PHONE_NSN[c][1] for c, *_ in V.COUNTRIES])
    nsn = nsn_base[country] + (rng.random(n) * 10.0 ** rand_digits[country]).astype(np.int64)
    us = country == 0  # US: area code 201-989, exchange 200-999
    nsn[us] = rng.integers(201, 990, us.sum()) * 10**7 + rng.integers(200, 1000, us.sum()) * 10**4 \
        + rng.integers(0, 10**4, us.sum())
    return nsn


def _households(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    """For each person, the person whose home they share (themselves when living alone)."""
    n = len(country)
    home = np.arange(n)
    joins = np.flatnonzero(rng.random(n) < HOUSEHOLD_SHARE)
    for c in np.unique(country[joins]):
        pool = np.flatnonzero(country == c)
        members = joins[country[joins] == c]
        home[members] = pool[rng.integers(0, len(pool), len(members))]
    home = home[home]  # a chain of two joins ends at one home
    return home


def build_population(con: duckdb.DuckDBPyConnection, vocab: dict[str, V.LocaleVocab],
                     n: int, days: int, start_epoch_day: int, seed: int) -> Population:
    """Draw `n` persons; creates the DuckDB table `persons` with their canonical strings."""
    rng = np.random.default_rng([seed, 1])
    weights = np.array([c[4] for c in V.COUNTRIES])
    country = rng.choice(len(V.COUNTRIES), size=n, p=weights / weights.sum())
    gender = (rng.random(n) < 0.5).astype(np.int8)  # 1 = male
    meta = _vocab_tables(con, vocab)
    first_i = np.where(gender == 1, _pick(rng, country, meta["first_male"]),
                       _pick(rng, country, meta["first_female"]))
    last_i = _pick(rng, country, meta["last"])
    second_codes = [i for i, c in enumerate(V.COUNTRIES) if c[0] in SECOND_SURNAME_COUNTRIES]
    last2_i = np.where(np.isin(country, second_codes), _pick(rng, country, meta["last"]), -1)
    street_i, old_street_i = _pick(rng, country, meta["streets"]), _pick(rng, country, meta["streets"])
    city_i, old_city_i = _pick(rng, country, meta["cities"]), _pick(rng, country, meta["cities"])
    house, old_house = _house_numbers(rng, n), _house_numbers(rng, n)
    nsn, old_nsn = _phone_numbers(rng, country), _phone_numbers(rng, country)
    # Households: a home's address (and mostly its surname, sometimes its landline) is shared.
    home = _households(rng, country)
    joined = home != np.arange(n)
    street_i, city_i, house = street_i[home], city_i[home], house[home]
    same_name = joined & (rng.random(n) < SAME_SURNAME_IN_HOUSEHOLD)
    last_i, last2_i = np.where(same_name, last_i[home], last_i), np.where(same_name, last2_i[home], last2_i)
    nsn = np.where(joined & (rng.random(n) < SHARED_LANDLINE), nsn[home], nsn)
    age_days = (rng.beta(2.2, 3.0, n) * 62 + 18) * 365.25
    birth = (start_epoch_day - age_days).astype(np.int64)

    kind = rng.choice(4, size=n, p=KIND_WEIGHTS)
    # Persons show up over the two history years and the generated window, a little more
    # recently than uniform (a growing shop).
    span = HISTORY_DAYS + days
    born = np.floor(span * rng.beta(1.3, 1.0, n)).astype(np.int64) - HISTORY_DAYS
    lifetime = rng.exponential(rng.gamma(2.0, 200.0, n))  # Pareto/NBD-like dropout
    churn = born + 5 + lifetime
    buyer = (kind == KIND_BOTH) | (kind == KIND_SHOP) | ((kind == KIND_CRM) & (rng.random(n) < 0.3))
    vip = buyer & (rng.random(n) < VIP_SHARE)
    lam = rng.gamma(0.8, MEAN_ORDERS_PER_DAY / 0.8, n) * np.where(vip, 3.0, 1.0) * buyer
    spend = rng.lognormal(0.0, 0.45, n) * np.where(vip, 3.0, 1.0)
    n_cat = len(V.CATEGORIES)
    cat1 = rng.integers(0, n_cat, n)
    cat2 = np.where(rng.random(n) < 0.6, rng.integers(0, n_cat, n), cat1)
    sess_rate = rng.gamma(1.2, MEAN_SESSIONS_PER_DAY / 1.2, n) * (1 + 2 * (lam > 0) * np.minimum(lam * 40, 3))
    open_rate = rng.beta(1.5, 4.0, n)
    click_rate = rng.gamma(2.0, 0.5, n)
    centre = rng.choice(len(PREF_HOURS), size=n, p=PREF_HOUR_WEIGHTS)
    pref_hour = np.clip(PREF_HOURS[centre] + rng.normal(0, 1.0, n), 6.0, 23.5)
    device = rng.choice(len(V.DEVICES), size=n, p=V.DEVICE_WEIGHTS)
    n_cookies = rng.geometric(0.55, n)  # 1, 2, 3... cookies (devices, cleared browsers)
    cookie_start = np.concatenate([[0], np.cumsum(n_cookies)[:-1]])

    nsn_width = np.array([len(V.PHONE_NSN[c][0]) + V.PHONE_NSN[c][1] for c, *_ in V.COUNTRIES])
    mail_pattern = rng.integers(0, 5, n)
    mail_digits = np.where(rng.random(n) < 0.35, rng.integers(1, 100, n), -1)
    mail_domain = rng.choice(5, size=n, p=V.MAIL_WEIGHTS)

    codes = [c[0] for c in V.COUNTRIES]
    con.register("_countries", pa.table({
        "ci": pa.array(np.arange(len(codes))), "code": codes,
        "language": [c[2] for c in V.COUNTRIES], "number_first": [c[5] for c in V.COUNTRIES],
        "width": nsn_width,
    }))
    domains = [(ci, k, d) for ci, (c, *_) in enumerate(V.COUNTRIES) for k, d in enumerate(V.FREE_MAIL[c])]
    con.register("_domains", pa.table({"ci": [d[0] for d in domains], "k": [d[1] for d in domains],
                                       "domain": [d[2] for d in domains]}))
    con.register("_p", pa.table({
        "person": np.arange(n, dtype=np.int64), "ci": country, "gender": gender,
        "first_i": first_i, "last_i": last_i, "last2_i": last2_i, "old_nsn": old_nsn, "street_i": street_i, "old_street_i": old_street_i,
        "city_i": city_i, "old_city_i": old_city_i, "house": house, "old_house": old_house,
        "birth": birth.astype(np.int32), "nsn": nsn, "pattern": mail_pattern,
        "digits": mail_digits, "dom": mail_domain,
    }))
    con.execute("""
        CREATE OR REPLACE TABLE persons AS
        WITH base AS (
            SELECT p.person, c.code AS country, c.language, p.gender,
                   fm.v AS first_name, ln.v || coalesce(' ' || ln2.v, '') AS last_name, ln.v AS surname1,
                   CASE WHEN c.number_first THEN p.house || ' ' || s.v ELSE s.v || ' ' || p.house END AS street,
                   CASE WHEN c.number_first THEN p.old_house || ' ' || os.v ELSE os.v || ' ' || p.old_house END AS old_street,
                   ct.v AS city, ct.postcode, oc.v AS old_city, oc.postcode AS old_postcode,
                   DATE '1970-01-01' + p.birth AS birth_date,
                   lpad(p.nsn::VARCHAR, c.width::INTEGER, '0') AS nsn,
                   lpad(p.old_nsn::VARCHAR, c.width::INTEGER, '0') AS old_nsn,
                   regexp_replace(strip_accents(lower(fm.v)), '[^a-z0-9]', '', 'g') AS f,
                   regexp_replace(strip_accents(lower(ln.v)), '[^a-z0-9]', '', 'g') AS l,
                   p.pattern, p.digits, d.domain
            FROM _p p
            JOIN _countries c ON c.ci = p.ci
            JOIN (SELECT i, v FROM _v_first_male UNION ALL SELECT i + 1000000, v FROM _v_first_female) fm
              ON fm.i = p.first_i + CASE WHEN p.gender = 1 THEN 0 ELSE 1000000 END
            JOIN _v_last ln ON ln.i = p.last_i
            LEFT JOIN _v_last ln2 ON ln2.i = p.last2_i
            JOIN _v_streets s ON s.i = p.street_i
            JOIN _v_streets os ON os.i = p.old_street_i
            JOIN _v_cities ct ON ct.i = p.city_i
            JOIN _v_cities oc ON oc.i = p.old_city_i
            JOIN _domains d ON d.ci = p.ci AND d.k = p.dom
        ), mailed AS (
            SELECT *, CASE pattern WHEN 0 THEN f || '.' || l WHEN 1 THEN f || l
                       WHEN 2 THEN left(f, 1) || '.' || l WHEN 3 THEN f || '_' || l
                       ELSE l || '.' || f END
                      || CASE WHEN digits >= 0 THEN digits::VARCHAR ELSE '' END AS local_part
            FROM base
        ), ranked AS (
            SELECT *, row_number() OVER (PARTITION BY local_part, domain ORDER BY person) AS k
            FROM mailed
        )
        SELECT person, country, language, gender, first_name, last_name, surname1, street, city, postcode,
               old_street, old_city, old_postcode, birth_date, nsn, old_nsn,
               -- unrelated persons never share a real address: number clashes apart
               local_part || CASE WHEN k > 1 THEN '.' || person::VARCHAR ELSE '' END
                   || '@' || domain AS email
        FROM ranked ORDER BY person
    """)
    for name in ("_p", "_countries", "_domains"):
        con.unregister(name)
    return Population(
        n=n, country=country, kind=kind, buyer=buyer, born_day=born, churn_day=churn, lam=lam,
        spend=spend, vip=vip, cat1=cat1, cat2=cat2, sess_rate=sess_rate, open_rate=open_rate,
        click_rate=click_rate, pref_hour=pref_hour, device=device, cookie_start=cookie_start,
        n_cookies=n_cookies, city_idx=city_i,
    )
