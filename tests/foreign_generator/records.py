"""CRM contacts and shop accounts of the true people, with duplicates and versions.

Every record has versions (the first at creation, later ones for consent changes, moves, new
phone spellings). The day-1 delivery holds each record's latest version up to that day; later
deliveries hold the versions of their day (same id, later `updated_at`: it supersedes), and
with edge cases on, a few stale re-deliveries (same id, an older `updated_at`: it must not).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import corrupt
from .population import Options

DAY = 86_400


def _hex_ids(rng: np.random.Generator, n: int, prefix: str, width: int) -> np.ndarray:
    ids = rng.choice(16 ** width, size=n, replace=False)
    return np.asarray([f"{prefix}{i:0{width}x}" for i in ids], dtype=object)


def _base(people: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator, system: str) -> pd.DataFrame:
    p = people.iloc[rows]
    n = len(rows)
    moved = rng.random(n) < 0.15  # created at the old address, updated to the new one later
    df = pd.DataFrame({
        "person": rows,
        "system": system,
        "is_duplicate": False,
        "email": p["email"].to_numpy(),
        "first_name": p["first_name"].to_numpy(),
        "last_name": p["last_name"].to_numpy(),
        "street": np.where(moved, p["old_street"], p["street"]),
        "city": np.where(moved, p["old_town"], p["town"]),
        "postcode": np.where(moved, p["old_postcode"], p["postcode"]),
        "country": p["country"].to_numpy(),
        "national_number": p["national_number"].to_numpy(),
        "calling_code": p["calling_code"].to_numpy(),
        "birth_date": p["birth_date"].to_numpy().astype("datetime64[D]").astype(str).astype(object),
        "gender": p["sex"].to_numpy().astype(object),
        "language": p["language"].to_numpy().astype(object),
        "moved": moved,
        "new_street": p["street"].to_numpy(), "new_city": p["town"].to_numpy(),
        "new_postcode": p["postcode"].to_numpy(),
        "created_day": p["appear_day"].to_numpy(),
    })
    return df


def _drift(df: pd.DataFrame, rng: np.random.Generator, rates: dict[str, float]) -> pd.DataFrame:
    """Apply the corruptions at the given rates (independently per record)."""
    n = len(df)

    def m(key: str) -> np.ndarray:
        return rng.random(n) < rates.get(key, 0.0)

    out = df.copy()
    email = out["email"].to_numpy()
    email = corrupt.apply(email, m("email_variant"), corrupt.gmail_variant(rng))
    email = corrupt.apply(email, m("email_other"), corrupt.other_address(rng))
    email[m("email_missing")] = None
    first, last = out["first_name"].to_numpy(), out["last_name"].to_numpy()
    first = corrupt.apply(first, m("nickname"), corrupt.nickname)
    first = corrupt.apply(first, m("typo_first"), corrupt.typo(rng))
    last = corrupt.apply(last, m("typo_last"), corrupt.typo(rng))
    fold = m("fold")
    first, last = corrupt.apply(first, fold, corrupt.fold), corrupt.apply(last, fold, corrupt.fold)
    upper = m("case")
    first, last = corrupt.apply(first, upper, corrupt.case(rng)), corrupt.apply(last, upper, corrupt.case(rng))
    first = corrupt.apply(first, m("whitespace"), corrupt.whitespace(rng))
    swap = m("swap_names")
    first, last = np.where(swap, last, first), np.where(swap, first, last)
    out["email"], out["first_name"], out["last_name"] = email, first, last
    old = m("old_address")
    for col, src in (("street", "old_street"), ("city", "old_town"), ("postcode", "old_postcode")):
        if src in out:
            out.loc[old, col] = out.loc[old, src]
    no_address = m("address_missing")
    out.loc[no_address, ["street", "postcode"]] = None
    out.loc[m("postcode_missing"), "postcode"] = None
    out.loc[m("phone_missing"), "national_number"] = None
    out.loc[m("birth_missing"), "birth_date"] = None
    out.loc[m("gender_missing"), "gender"] = None
    return out


def build_records(people: pd.DataFrame, days: int, rng: np.random.Generator,
                  options: Options) -> pd.DataFrame:
    """All CRM contacts and shop accounts (base records and duplicates), one row per record."""
    idx = np.arange(len(people))
    crm = _drift(_base(people, idx[people["uses_crm"].to_numpy()], rng, "crm"), rng, {
        "phone_missing": 0.3, "birth_missing": 0.15, "gender_missing": 0.2, "postcode_missing": 0.03,
    })
    shop = _base(people, idx[people["uses_shop"].to_numpy()], rng, "shop")
    shop["created_day"] = shop["created_day"] + rng.integers(-20, 60, len(shop))
    shop = _drift(shop, rng, {
        "email_variant": 0.10, "email_other": 0.08, "nickname": 0.05, "fold": 0.08,
        "case": 0.05, "old_address": 0.08, "phone_missing": 0.5, "address_missing": 0.05,
        "whitespace": 0.03,
    })
    shop["birth_date"] = None  # the shop never asks for a birth date
    shop["gender"] = None
    shop["language"] = None

    # Duplicates: a second record in a system the person uses, created a while later, with
    # differences that often leave no shared email.
    both = pd.concat([crm, shop], ignore_index=True)
    pick = rng.random(len(both)) < options.duplicate_share * len(people) / max(len(both), 1)
    dup = both[pick].copy()
    dup["is_duplicate"] = True
    dup["created_day"] = dup["created_day"] + rng.exponential(90, len(dup)).astype(int) + 1
    p = people.iloc[dup["person"].to_numpy()]
    dup["old_street"], dup["old_town"], dup["old_postcode"] = (
        p["old_street"].to_numpy(), p["old_town"].to_numpy(), p["old_postcode"].to_numpy())
    dup = _drift(dup, rng, {
        "email_variant": 0.15, "email_other": 0.30, "email_missing": 0.20, "typo_first": 0.2,
        "typo_last": 0.15, "nickname": 0.2, "fold": 0.15, "case": 0.2, "whitespace": 0.15,
        "swap_names": 0.05, "old_address": 0.25, "address_missing": 0.15, "postcode_missing": 0.1,
        "phone_missing": 0.3, "birth_missing": 0.3,
    })
    records = pd.concat([crm, shop, dup.drop(columns=["old_street", "old_town", "old_postcode"])],
                        ignore_index=True)
    records = records[records["created_day"] < days].reset_index(drop=True)
    n = len(records)
    is_crm = (records["system"] == "crm").to_numpy()
    shop_ids = np.asarray([f"C{i:08d}" for i in rng.choice(10 ** 8, n, replace=False)], dtype=object)
    records["record_id"] = np.where(is_crm, _hex_ids(rng, n, "K-", 10), shop_ids)
    records["phone"] = np.where(records["national_number"].isna(), None,
                                corrupt.phone(records["national_number"].fillna("0000000000").to_numpy(),
                                              records["calling_code"].to_numpy(),
                                              rng.integers(0, 6, n)))
    records["opted_in"] = is_crm & (rng.random(n) < 0.6)
    return records


def build_versions(records: pd.DataFrame, days: int, rng: np.random.Generator,
                   options: Options) -> pd.DataFrame:
    """One row per delivered version: the record's fields, `updated_at` and `deliver_day`."""
    n = len(records)
    created_s = records["created_day"].to_numpy() * DAY + rng.integers(0, DAY, n)
    v0 = records.assign(version=0, updated_s=created_s, created_s=created_s, unsubscribed_s=np.nan)
    versions = [v0]
    # Up to two later versions: a move to the current address, a consent change or another
    # phone spelling; days drawn after creation.
    last = v0
    for k in (1, 2):
        gap = rng.exponential(180, n).astype(int) + 1
        day = last["updated_s"].to_numpy() // DAY + gap
        keep = (day < days) & (rng.random(n) < (0.35 if k == 1 else 0.3))
        nxt = last[keep].copy()
        nxt["version"] = k
        nxt["updated_s"] = day[keep] * DAY + rng.integers(0, DAY, int(keep.sum()))
        moved = nxt["moved"].to_numpy() & (k == 1)
        nxt.loc[moved, "street"] = nxt.loc[moved, "new_street"]
        nxt.loc[moved, "city"] = nxt.loc[moved, "new_city"]
        nxt.loc[moved, "postcode"] = nxt.loc[moved, "new_postcode"]
        is_crm = (nxt["system"] == "crm").to_numpy()
        unsub = is_crm & nxt["opted_in"].to_numpy() & (rng.random(len(nxt)) < 0.25)
        nxt.loc[unsub, "unsubscribed_s"] = nxt.loc[unsub, "updated_s"]
        opt = is_crm & ~nxt["opted_in"].to_numpy() & (rng.random(len(nxt)) < 0.3)
        nxt.loc[opt, "opted_in"] = True
        versions.append(nxt)
        last = pd.concat([last[~keep], nxt])
        last = last.sort_index()
    allv = pd.concat(versions, ignore_index=True)
    day = allv["updated_s"].to_numpy() // DAY
    # Day 1 (index 0) is the backfill: the latest version up to then; later days their own.
    allv["deliver_day"] = np.maximum(day, 0)
    backfill = allv[allv["deliver_day"] == 0]
    latest = backfill.sort_values("updated_s").groupby("record_id", sort=False).tail(1)
    allv = pd.concat([latest, allv[allv["deliver_day"] > 0]], ignore_index=True)
    if options.edge_cases and days > 1:
        stale = allv[(allv["deliver_day"] < days - 1)].sample(frac=0.005, random_state=int(rng.integers(1 << 31)))
        stale = stale.assign(deliver_day=rng.integers(1, days, len(stale)))
        stale = stale[stale["deliver_day"] > allv.loc[stale.index, "deliver_day"]]
        allv = pd.concat([allv, stale], ignore_index=True)
    return allv.reset_index(drop=True)
