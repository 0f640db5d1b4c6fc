"""Daily CRM and shop record deliveries: updates, erasure requests, the CSV files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from personalization.generate import dirt as D
from personalization.generate.writers import LandingFile

CONTACT_UPDATE_RATE = 0.004  # share of existing contacts changed per day
ACCOUNT_UPDATE_RATE = 0.002
ERASURE_RATE = 0.0003

CONTACT_COLUMNS = ("contact_id, email, first_name, last_name, phone, street, city, postcode, country, "
                   "birth_date, gender, language, created_at, updated_at, email_opt_in, opt_in_at, "
                   "unsubscribed_at")
CUSTOMER_COLUMNS = ("customer_id, email, first_name, last_name, phone, street, city, postcode, country, "
                    "created_at, updated_at")
_SELECT = {
    "crm_contacts": """
        SELECT s.pos, CASE WHEN s.no_key THEN NULL ELSE r.contact_id END AS contact_id, r.email,
               r.first_name, r.last_name, r.phone, r.street, r.city, r.postcode, r.country, r.birth_date,
               r.gender, r.language, iso_ts(r.created_s) AS created_at, iso_ts(r.updated_s) AS updated_at,
               CASE r.opt_in WHEN 1 THEN true WHEN 0 THEN false END AS email_opt_in,
               CASE WHEN r.opt_in_s >= 0 THEN iso_ts(r.opt_in_s) END AS opt_in_at,
               CASE WHEN r.unsub_s >= 0 THEN iso_ts(r.unsub_s) END AS unsubscribed_at,
               r.dirt_email, r.dirt_birth, r.junk_kind""",
    "shop_accounts": """
        SELECT s.pos, CASE WHEN s.no_key THEN NULL ELSE r.customer_id END AS customer_id, r.email,
               r.first_name, r.last_name, r.phone, r.street, r.city, r.postcode, r.country,
               iso_ts(r.created_s) AS created_at, iso_ts(r.updated_s) AS updated_at,
               r.dirt_email, r.dirt_birth, r.junk_kind""",
}


def apply_updates(con: duckdb.DuckDBPyConnection, table: str, rng: np.random.Generator, d: int,
                  day_s: int) -> int:
    """Change a few existing records on day `d`: consent, moves, new phone spellings."""
    existing = con.execute(f"SELECT count(*) FROM {table} WHERE created_day < {d}").fetchall()[0][0]
    rate = CONTACT_UPDATE_RATE if table == "crm_contacts" else ACCOUNT_UPDATE_RATE
    k = int(rng.binomial(existing, rate))
    if k == 0:
        return 0
    # rids are numbered by creation day, so the existing records are a prefix.
    rid = np.sort(rng.choice(existing, size=k, replace=False))
    kinds = rng.choice(4, size=k, p=[0.30, 0.25, 0.25, 0.20]) if table == "crm_contacts" \
        else rng.choice([2, 3], size=k)
    t = day_s + rng.integers(7 * 3600, 23 * 3600, k)
    con.register("_upd", pa.table({"rid": rid, "kind": kinds, "t": t, "fmt": rng.integers(0, 5, k)}))
    consent = ""
    if table == "crm_contacts":  # 0 opt-in, 1 unsubscribe
        consent = """
            opt_in = CASE u.kind WHEN 0 THEN 1 WHEN 1 THEN 0 ELSE r.opt_in END,
            opt_in_s = CASE WHEN u.kind = 0 THEN u.t ELSE r.opt_in_s END,
            unsub_s = CASE u.kind WHEN 1 THEN u.t WHEN 0 THEN -1 ELSE r.unsub_s END,"""
    con.execute(f"""
        UPDATE {table} r SET {consent}
            street = CASE WHEN u.kind = 2 THEN r.old_street ELSE r.street END,
            city = CASE WHEN u.kind = 2 THEN r.old_city ELSE r.city END,
            postcode = CASE WHEN u.kind = 2 THEN r.old_postcode ELSE r.postcode END,
            old_street = CASE WHEN u.kind = 2 THEN coalesce(r.street, r.street0) ELSE r.old_street END,
            old_city = CASE WHEN u.kind = 2 THEN coalesce(r.city, r.city0) ELSE r.old_city END,
            old_postcode = CASE WHEN u.kind = 2 THEN coalesce(r.postcode, r.postcode0) ELSE r.old_postcode END,
            phone = CASE WHEN u.kind = 3 AND r.junk_kind <> 1 THEN phone_fmt(r.country, r.nsn, u.fmt) ELSE r.phone END,
            updated_s = u.t, changed_day = {d}
        FROM _upd u WHERE r.rid = u.rid
    """)
    con.unregister("_upd")
    return k


def write_records(con: duckdb.DuckDBPyConnection, table: str, path: Path, d: int, ds: str,
                  rng: np.random.Generator, log: D.DirtLog, force: bool) -> np.ndarray:
    """Write the records created or changed on day `d`; return their rids (for the truth)."""
    rid = con.execute(f"SELECT rid FROM {table} WHERE changed_day = {d} ORDER BY rid").fetchnumpy()["rid"]
    rid = rid.astype(np.int64)
    n = len(rid)
    nokey = D.pick(rng, n, "missing_key", force)
    broken = D.pick(rng, n, "malformed_line", force)
    all_rid = np.concatenate([rid, rid[nokey], rid[broken]])
    no_key = np.concatenate([np.zeros(n, bool), np.ones(len(nokey), bool), np.zeros(len(broken), bool)])
    # Copies with a missing key land anywhere in the file.
    key = np.concatenate([np.arange(n, dtype=float), rng.random(len(nokey)) * max(n, 1),
                          np.full(len(broken), np.inf)])
    pos = np.empty(len(all_rid), dtype=np.int64)
    pos[np.argsort(key, kind="stable")] = np.arange(len(all_rid))
    con.register("_sel", pa.table({"rid": all_rid, "pos": pos, "no_key": no_key}))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _out AS {_SELECT[table]} "
                f"FROM _sel s JOIN {table} r ON r.rid = s.rid ORDER BY s.pos")
    con.unregister("_sel")
    written = n + len(nokey)
    stats = con.execute(f"SELECT count(*) FILTER (dirt_email), count(*) FILTER (dirt_birth), "
                    f"count(*) FILTER (junk_kind = 1), count(*) FILTER (junk_kind = 2), "
                    f"count(*) FILTER (junk_kind = 3) FROM _out WHERE pos < {written}").fetchall()[0]
    name = "crm/contacts" if table == "crm_contacts" else "shop/customers"
    log.add(ds, name, "invalid_email", stats[0])
    log.add(ds, name, "wrong_type", stats[1])
    log.add(ds, name, "missing_key", len(nokey))
    log.add(ds, name, "malformed_line", len(broken))
    for label, count in zip(("phone_0000000000", "shared_email", "birth_date_1900_01_01"), stats[2:], strict=True):
        log.junk[label] += count
    raw = D.break_csv(rng, con.execute(f"SELECT * EXCLUDE (pos, dirt_email, dirt_birth, junk_kind) FROM _out "
                                   f"WHERE pos >= {written} ORDER BY pos").fetchall())
    with LandingFile(con, path, "csv") as f:
        f.write(f"SELECT * EXCLUDE (dirt_email, dirt_birth, junk_kind) FROM _out WHERE pos < {written}",
                written, raw, rng)
    con.execute("DROP TABLE _out")
    return rid


def write_erasures(con: duckdb.DuckDBPyConnection, path: Path, d: int, day_s: int,
                   rng: np.random.Generator) -> int:
    """Right-to-erasure requests: e-mails of real contacts (none on most days)."""
    valid = con.execute(f"SELECT rid FROM crm_contacts WHERE created_day < {max(d, 1)} AND "
                    "email_sha256 IS NOT NULL AND junk_kind <> 2 ORDER BY rid").fetchnumpy()["rid"]
    k = 0
    if len(valid) and (d == 0 or rng.random() < 0.5):
        k = min(max(1, int(rng.binomial(len(valid), ERASURE_RATE))), len(valid))
    rid = np.sort(rng.choice(valid, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    t = day_s + rng.integers(0, 86400, k) if d > 0 else day_s - rng.integers(86400, 200 * 86400, k)
    con.register("_er", pa.table({"rid": rid.astype(np.int64), "t": t.astype(np.int64),
                                  "pos": np.arange(k, dtype=np.int64)}))
    con.execute("CREATE OR REPLACE TEMP TABLE _out AS SELECT e.pos, trim(c.email) AS email, "
                "iso_ts(e.t) AS requested_at FROM _er e JOIN crm_contacts c ON c.rid = e.rid ORDER BY e.pos")
    con.unregister("_er")
    with LandingFile(con, path, "csv") as f:
        f.write("SELECT * FROM _out", k)
    con.execute("DROP TABLE _out")
    return k
