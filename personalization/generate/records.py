"""CRM contacts and shop accounts: one per system a person uses, plus planted duplicates.

A record is a noisy copy of its person: the variation codes are drawn with numpy (`corrupt`)
and applied by one DuckDB query (typos, nicknames, initials, case, whitespace, swapped
names, birth-date slips, old or changed addresses, postcode typos, e-mail variants, old or
mistyped phone numbers, missing fields, phone spelling). The records live in the DuckDB
tables `crm_contacts` and `shop_accounts`, which daily updates then mutate.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from personalization.generate import corrupt as C
from personalization.generate import population as P
from personalization.generate import vocab as V

DUPLICATE_PERSON_SHARE = 0.115  # persons with a second (or third) record in one system
INVALID_EMAIL_RATE = 0.007
BAD_BIRTH_DATE_RATE = 0.006
JUNK_PHONE_RATE = 0.004
JUNK_EMAIL_RATE = 0.004
JUNK_BIRTH_RATE = 0.005
SRC_CRM, SRC_SHOP = 0, 1


@dataclass
class RecordIndex:
    """Which record a person uses, for orders and campaigns (-1 = none)."""

    shop_primary: np.ndarray  # person -> shop rid
    shop_dup: np.ndarray  # person -> a duplicate shop rid (forgot they had an account)
    crm_count: int
    shop_count: int


def _macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE MACRO iso_ts(s) AS "
                "strftime(make_timestamp(s::BIGINT * 1000000), '%Y-%m-%dT%H:%M:%SZ')")
    con.execute(f"CREATE OR REPLACE MACRO phone_fmt(country, nsn, fmt) AS {P.PHONE_SQL}")


def _plan(pop: P.Population, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One row per record: source, person, duplicate flag, creation day."""
    n = pop.n
    persons = np.arange(n)
    crm_p = persons[(pop.kind == P.KIND_BOTH) | (pop.kind == P.KIND_CRM)]
    shop_p = persons[(pop.kind == P.KIND_BOTH) | (pop.kind == P.KIND_SHOP)]
    known = persons[pop.kind != P.KIND_ANON]
    # Draw the duplicated persons among those that have a record at all, so the share of
    # ALL persons is the asked one.
    dup_p = known[rng.random(len(known)) < DUPLICATE_PERSON_SHARE * n / max(len(known), 1)]
    extra = np.repeat(dup_p, 1 + (rng.random(len(dup_p)) < 0.15))
    kind = pop.kind[extra]
    extra_src = np.where(kind == P.KIND_CRM, SRC_CRM, np.where(
        kind == P.KIND_SHOP, SRC_SHOP, (rng.random(len(extra)) < 0.5).astype(int)))
    source = np.concatenate([np.full(len(crm_p), SRC_CRM), np.full(len(shop_p), SRC_SHOP), extra_src])
    person = np.concatenate([crm_p, shop_p, extra])
    is_dup = np.concatenate([np.zeros(len(crm_p) + len(shop_p), bool), np.ones(len(extra), bool)])
    lag = np.where(is_dup, rng.exponential(120, len(person)),
                   np.where(source == SRC_CRM, rng.integers(0, 3, len(person)), rng.exponential(8, len(person))))
    created_day = pop.born_day[person] + lag.astype(np.int64)
    # Stable record numbering: by source, then creation, then person.
    order = np.lexsort((person, created_day, source))
    return {"source": source[order], "person": person[order], "is_dup": is_dup[order],
            "created_day": created_day[order]}


def _variations(plan: dict, pop: P.Population, rng: np.random.Generator) -> dict[str, np.ndarray]:
    m = len(plan["person"])
    shop = plan["source"] == SRC_SHOP
    cls = np.where(plan["is_dup"], np.where(rng.random(m) < C.STALE_SHARE, C.STALE_DUPLICATE, C.DUPLICATE),
                   np.where(shop, C.PRIMARY_SHOP, C.PRIMARY_CRM)).astype(np.int8)
    junk = rng.random(m)
    junk_kind = np.select([junk < JUNK_PHONE_RATE, junk < JUNK_PHONE_RATE + JUNK_EMAIL_RATE,
                           (junk < JUNK_PHONE_RATE + JUNK_EMAIL_RATE + JUNK_BIRTH_RATE) & ~shop], [1, 2, 3], 0)
    return {
        "cls": cls, **C.draw(rng, cls),
        "phone_fmt": rng.integers(0, 5, m, dtype=np.int8), "junk_kind": junk_kind.astype(np.int8),
        "junk_r": rng.integers(0, 2, m, dtype=np.int8),
        "dirt_email": rng.random(m) < INVALID_EMAIL_RATE, "dirt_email_r": rng.integers(0, 4, m, dtype=np.int8),
        "dirt_birth": (rng.random(m) < BAD_BIRTH_DATE_RATE) & ~shop,
        "dirt_birth_r": rng.integers(0, 3, m, dtype=np.int8),
    }


def _times(plan: dict, pop: P.Population, rng: np.random.Generator, start_s: int) -> dict:
    m = len(plan["person"])
    created_s = start_s + plan["created_day"] * 86400 + rng.integers(7 * 3600, 23 * 3600, m)
    backfill = plan["created_day"] <= 0
    # A third of the old records was edited some time before the first delivery.
    edited = backfill & (rng.random(m) < 0.33)
    updated_s = np.where(edited, created_s + (rng.random(m) * np.maximum(start_s - created_s, 0)), created_s)
    state = rng.choice(3, m, p=[0.55, 0.30, 0.15])  # true, false, unknown
    opt_in = np.where(state == 0, 1, np.where(state == 1, 0, -1))
    opt_in_s = np.where(opt_in == 1, created_s + (rng.random(m) < 0.3) * (updated_s - created_s) * rng.random(m), -1)
    opt_in_s = np.where((opt_in == 1) & (rng.random(m) < 0.1), -1, opt_in_s)  # legacy: date unknown
    unsub = backfill & (opt_in == 1) & (rng.random(m) < 0.08)
    unsub_s = np.where(unsub, np.maximum(updated_s, opt_in_s), -1)
    opt_in = np.where(unsub, 0, opt_in)
    return {"created_s": created_s.astype(np.int64), "updated_s": updated_s.astype(np.int64),
            "opt_in": opt_in, "opt_in_s": opt_in_s.astype(np.int64), "unsub_s": unsub_s.astype(np.int64)}


def build_records(con: duckdb.DuckDBPyConnection, pop: P.Population, seed: int,
                  start_s: int) -> RecordIndex:
    """Create DuckDB tables `crm_contacts` and `shop_accounts` (all records, any creation day)."""
    rng = np.random.default_rng([seed, 2])
    _macros(con)
    C.register_macros(con)
    plan = _plan(pop, rng)
    cols = {**plan, **_variations(plan, pop, rng), **_times(plan, pop, rng, start_s)}
    is_shop = plan["source"] == SRC_SHOP
    rid = np.where(is_shop, np.arange(len(is_shop)) - (~is_shop).sum(), np.arange(len(is_shop)))
    cols["rid"] = rid
    con.register("_r", pa.table({k: pa.array(v) for k, v in cols.items()}))
    con.register("_nick", pa.table({"formal": list(V.NICKNAMES), "nick": list(V.NICKNAMES.values())}))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _rec AS
        WITH x AS (
            -- Codes that could not apply are reset, so the logged counts are what happened:
            -- no nickname for the name, one surname only, shop accounts hold no birth date/gender.
            SELECT r.* REPLACE (
                       CASE WHEN r.fn_mode = 3 AND nk.nick IS NULL THEN 0 ELSE r.fn_mode END AS fn_mode,
                       CASE WHEN r.ln_mode = 7 AND p.surname1 = p.last_name THEN 0 ELSE r.ln_mode END AS ln_mode,
                       CASE WHEN r.source = {SRC_SHOP} THEN 0 ELSE r.birth_mode END AS birth_mode,
                       r.gender_missing AND r.source = {SRC_CRM} AS gender_missing),
                   p.country, p.language, p.gender, p.nsn, p.old_nsn,
                   birth_slip(p.birth_date, r.birth_mode, r.r_birth) AS birth_date,
                   CASE r.fn_mode WHEN 3 THEN coalesce(nk.nick, p.first_name)
                                  WHEN 4 THEN left(p.first_name, 1) || '.'
                                  WHEN 5 THEN left(p.first_name, 1)
                                  WHEN 6 THEN NULL ELSE p.first_name END AS fn_base,
                   CASE r.ln_mode WHEN 6 THEN NULL WHEN 7 THEN p.surname1 ELSE p.last_name END AS ln_base,
                   CASE WHEN r.addr_mode = 1 THEN p.old_street ELSE p.street END AS street_base,
                   CASE WHEN r.addr_mode = 1 THEN p.old_city ELSE p.city END AS city_base,
                   CASE WHEN r.addr_mode = 1 THEN p.old_postcode ELSE p.postcode END AS postcode_base,
                   p.old_street, p.old_city, p.old_postcode,
                   p.email AS email0, split_part(p.email, '@', 1) AS lp, split_part(p.email, '@', 2) AS dom
            FROM _r r JOIN persons p USING (person) LEFT JOIN _nick nk ON nk.formal = p.first_name
        -- Macros take columns, never other macro calls (nesting would multiply the expression).
        ), edit1 AS (
            SELECT *,
                CASE WHEN fn_mode IN (1, 2) THEN typo(fn_base, r_fn) ELSE fn_base END AS fn_edit1,
                CASE WHEN ln_mode IN (1, 2) THEN typo(ln_base, r_ln) ELSE ln_base END AS ln_edit1,
                CASE WHEN street_abbrev THEN street_abbrev(street_base) ELSE street_base END AS street_abbr
            FROM x
        ), edit2 AS (
            SELECT *,
                CASE WHEN fn_mode = 2 THEN typo(fn_edit1, r_fn // 1000 + 7) ELSE fn_edit1 END AS fn,
                CASE WHEN ln_mode = 2 THEN typo(ln_edit1, r_ln // 1000 + 7) ELSE ln_edit1 END AS ln,
                CASE WHEN street_typo THEN typo(street_abbr, r_addr) ELSE street_abbr END AS street_typed
            FROM edit1
        ), named AS (
            SELECT *,
                house_change(street_typed, house_mode, r_addr // 11) AS street0,
                CASE WHEN city_typo THEN typo(city_base, r_addr // 13) ELSE city_base END AS city0,
                CASE WHEN postcode_typo THEN postcode_typo(postcode_base, r_addr // 17) ELSE postcode_base END
                    AS postcode0,
                CASE email_mode
                    WHEN 0 THEN email0
                    WHEN 1 THEN CASE WHEN dom = 'gmail.com' AND r_mail % 2 = 0
                                     THEN left(lp, 1 + r_mail % greatest(length(lp) - 1, 1)) || '.'
                                          || substr(lp, 2 + r_mail % greatest(length(lp) - 1, 1)) || '@gmail.com'
                                     WHEN dom = 'gmail.com' THEN lp || '+shop@gmail.com'
                                     ELSE upper(left(lp, 1)) || substr(lp, 2) || '@' || upper(dom) END
                    WHEN 2 THEN lp || (r_mail % 90 + 10)::VARCHAR || '@'
                                || CASE WHEN dom = 'gmail.com' THEN 'outlook.com' ELSE 'gmail.com' END
                    WHEN 4 THEN typo(lp, r_mail) || '@' || dom
                    ELSE NULL END AS email1,
                CASE phone_mode WHEN 1 THEN NULL WHEN 2 THEN old_nsn
                                WHEN 3 THEN digit_slip(nsn, r_phone) ELSE nsn END AS phone_nsn
            FROM edit2
        ), swapped AS (
            SELECT *, CASE WHEN swap THEN ln ELSE fn END AS fn2,
                      CASE WHEN swap THEN fn ELSE ln END AS ln2
            FROM named
        )
        SELECT rid, source, person, is_dup, cls, created_day, created_s, updated_s,
               CASE WHEN created_day <= 0 THEN 0 ELSE created_day END AS changed_day,
               opt_in, opt_in_s, unsub_s, dirt_email, dirt_birth,
               fn_mode, ln_mode, swap, "case", ws, birth_mode, addr_mode, house_mode, postcode_typo,
               street_abbrev, street_typo, city_typo, phone_mode, email_mode, gender_missing,
               CASE WHEN junk_kind = 2 THEN CASE WHEN junk_r = 0 THEN 'test@test.com' ELSE 'info@{V.SHOP_DOMAIN}' END
                    WHEN dirt_email THEN CASE dirt_email_r WHEN 0 THEN replace(email1, '@', '')
                                          WHEN 1 THEN replace(email1, '@', '@@')
                                          WHEN 2 THEN split_part(email1, '.', 1) || ' ' || substr(email1, length(split_part(email1, '.', 1)) + 2)
                                          ELSE split_part(email1, '@', 1) || '@' || split_part(split_part(email1, '@', 2), '.', 1) END
                    WHEN "case" = 3 THEN upper(left(email1, 1)) || substr(email1, 2)
                    WHEN ws = 4 THEN ' ' || email1 || ' '
                    ELSE email1 END AS email,
               CASE WHEN "case" = 2 THEN lower(fn2) WHEN "case" = 3 THEN upper(fn2)
                    WHEN ws = 1 THEN fn2 || ' ' ELSE fn2 END AS first_name,
               CASE WHEN "case" IN (1, 3) THEN upper(ln2) WHEN "case" = 2 THEN lower(ln2)
                    WHEN ws = 2 THEN ' ' || ln2 ELSE ln2 END AS last_name,
               CASE WHEN junk_kind = 1 THEN '0000000000' WHEN phone_nsn IS NULL THEN NULL
                    ELSE phone_fmt(country, phone_nsn, phone_fmt) END AS phone,
               CASE WHEN addr_mode = 2 THEN NULL WHEN ws = 3 THEN replace(street0, ' ', '  ') ELSE street0 END AS street,
               CASE WHEN addr_mode = 2 THEN NULL ELSE city0 END AS city,
               CASE WHEN addr_mode = 2 THEN NULL ELSE postcode0 END AS postcode,
               country, coalesce(phone_nsn, nsn) AS nsn, old_street, old_city, old_postcode, street0, city0, postcode0,
               CASE WHEN junk_kind = 3 THEN '1900-01-01' WHEN birth_mode = 1 THEN NULL
                    WHEN dirt_birth THEN CASE dirt_birth_r WHEN 0 THEN strftime(birth_date, '%d/%m/%Y')
                                          WHEN 1 THEN strftime(birth_date, '%Y-%m') || '-31x' ELSE 'unknown' END
                    ELSE strftime(birth_date, '%Y-%m-%d') END AS birth_date,
               CASE WHEN gender_missing THEN NULL WHEN gender = 1 THEN 'M' ELSE 'F' END AS gender,
               CASE WHEN gender_missing THEN NULL ELSE language END AS language,
               junk_kind
        FROM swapped
    """)
    con.unregister("_r")
    con.execute("""
        CREATE OR REPLACE TABLE crm_contacts AS
        SELECT 'C' || lpad(rid::VARCHAR, 7, '0') AS contact_id, *,
               CASE WHEN NOT dirt_email AND email IS NOT NULL
                    THEN sha256(lower(trim(email))) END AS email_sha256
        FROM _rec WHERE source = 0 ORDER BY rid
    """)
    con.execute("""
        CREATE OR REPLACE TABLE shop_accounts AS
        SELECT (100000 + rid)::VARCHAR AS customer_id, * FROM _rec WHERE source = 1 ORDER BY rid
    """)
    con.execute("DROP TABLE _rec")
    shop = con.execute("SELECT rid, person, is_dup FROM shop_accounts ORDER BY rid").fetchnumpy()
    primary = np.full(pop.n, -1, dtype=np.int64)
    dup = np.full(pop.n, -1, dtype=np.int64)
    primary[shop["person"][~shop["is_dup"]]] = shop["rid"][~shop["is_dup"]]
    dup[shop["person"][shop["is_dup"]]] = shop["rid"][shop["is_dup"]]
    counts = con.execute("SELECT count(*) FILTER (source = 0), count(*) FILTER (source = 1) FROM "
                     "(SELECT source FROM crm_contacts UNION ALL SELECT source FROM shop_accounts)").fetchall()[0]
    return RecordIndex(shop_primary=primary, shop_dup=dup, crm_count=counts[0], shop_count=counts[1])


_VARIATION_SQL = {  # corruption kind -> condition on the variation codes (see `corrupt`)
    "first_typo": "fn_mode IN (1, 2)", "first_two_edits": "fn_mode = 2", "first_nickname": "fn_mode = 3",
    "first_initial": "fn_mode IN (4, 5)", "first_missing": "fn_mode = 6", "last_typo": "ln_mode IN (1, 2)",
    "last_missing": "ln_mode = 6", "second_surname_dropped": "ln_mode = 7", "names_swapped": "swap",
    "case_changed": '"case" > 0', "whitespace": "ws > 0", "birth_missing": "birth_mode = 1",
    "birth_day_month_swapped": "birth_mode = 2", "birth_digit_slip": "birth_mode = 3", "moved": "addr_mode = 1",
    "address_missing": "addr_mode = 2", "house_number_changed": "house_mode > 0",
    "postcode_typo": "postcode_typo", "street_abbreviated": "street_abbrev", "street_typo": "street_typo",
    "city_typo": "city_typo", "phone_missing": "phone_mode = 1", "phone_old_number": "phone_mode = 2",
    "phone_digit_slip": "phone_mode = 3", "email_variant": "email_mode = 1", "email_other": "email_mode = 2",
    "email_missing": "email_mode = 3", "email_typo": "email_mode = 4", "gender_missing": "gender_missing",
}


def variation_counts(con: duckdb.DuckDBPyConnection, last_day: int) -> dict:
    """Records delivered by `last_day` per source and class, and how many carry each corruption."""
    out = {}
    for source, table in (("crm", "crm_contacts"), ("shop", "shop_accounts")):
        kinds = ", ".join(f"count(*) FILTER ({cond}) AS {kind}" for kind, cond in _VARIATION_SQL.items())
        rows = con.execute(f"SELECT cls, count(*) AS records, {kinds} FROM {table} "
                           f"WHERE created_day <= {last_day} GROUP BY cls ORDER BY cls").fetchall()
        names = ["records", *_VARIATION_SQL]
        out[source] = {C.CLASSES[row[0]]: {k: int(v) for k, v in zip(names, row[1:], strict=True) if v}
                       for row in rows}
    out["persons_with_duplicates"] = int(con.execute(
        f"SELECT count(DISTINCT person) FROM (SELECT person, created_day, is_dup FROM crm_contacts UNION ALL "
        f"SELECT person, created_day, is_dup FROM shop_accounts) WHERE is_dup AND created_day <= {last_day}"
    ).fetchone()[0])
    return out
