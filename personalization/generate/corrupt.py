"""The mistakes people and systems make when the same person is entered twice.

Each record gets variation codes drawn here with numpy, by record class: a primary CRM
contact (the reference spelling), a primary shop account (cross-system drift: typed again
by the customer), a duplicate, or a stale duplicate (created in another period of the
person's life: other e-mail, old or no address, old or no phone, so it shares no contact
key with the person's other records). The codes are applied by DuckDB macros
(`register_macros`) in `records.build_records`. Rates and their sources: docs/generator.md.
"""

from __future__ import annotations

import duckdb
import numpy as np

PRIMARY_CRM, PRIMARY_SHOP, DUPLICATE, STALE_DUPLICATE = 0, 1, 2, 3
CLASSES = ("primary_crm", "primary_shop", "duplicate", "stale_duplicate")
STALE_SHARE = 0.25  # of duplicates

# Probability per record class: (primary CRM, primary shop, duplicate, stale duplicate).
# Groups of mutually exclusive kinds are drawn as one categorical variable.
RATES: dict[str, tuple[float, float, float, float]] = {
    # first name: one exclusive change (typos: 80 % one edit, 20 % two, Damerau 1964)
    "first_typo": (0.0, 0.03, 0.15, 0.15),
    "first_nickname": (0.0, 0.04, 0.25, 0.25),  # where the name has a common nickname
    "first_initial": (0.0, 0.01, 0.04, 0.04),
    "first_missing": (0.0, 0.01, 0.03, 0.03),
    # last name
    "last_typo": (0.0, 0.03, 0.12, 0.12),
    "last_missing": (0.0, 0.01, 0.02, 0.02),
    "second_surname_dropped": (0.0, 0.30, 0.35, 0.35),  # two-surname countries only
    "names_swapped": (0.0, 0.0, 0.02, 0.02),
    "case_changed": (0.0, 0.05, 0.25, 0.25),
    "whitespace": (0.0, 0.03, 0.15, 0.15),
    # birth date (CRM only; shop accounts have none): one exclusive change
    "birth_missing": (0.20, 0.0, 0.30, 0.30),
    "birth_day_month_swapped": (0.0, 0.0, 0.03, 0.03),
    "birth_digit_slip": (0.0, 0.0, 0.04, 0.04),
    # address: moved/missing exclusive, the rest independent
    "moved": (0.0, 0.08, 0.20, 0.70),
    "address_missing": (0.08, 0.05, 0.15, 0.30),
    "house_number_changed": (0.0, 0.02, 0.06, 0.06),
    "postcode_typo": (0.0, 0.01, 0.03, 0.03),
    "street_abbreviated": (0.0, 0.10, 0.15, 0.15),
    "street_typo": (0.0, 0.01, 0.03, 0.03),
    "city_typo": (0.0, 0.01, 0.02, 0.02),
    # phone: one exclusive change (the spelling is drawn for every record)
    "phone_missing": (0.25, 0.35, 0.40, 0.50),
    "phone_old_number": (0.0, 0.02, 0.10, 0.50),
    "phone_digit_slip": (0.0, 0.01, 0.03, 0.0),
    # e-mail: one exclusive change
    "email_variant": (0.0, 0.07, 0.25, 0.0),  # gmail dots / +tag, upper-case domain
    "email_other": (0.0, 0.05, 0.20, 0.70),  # another address of the person
    "email_missing": (0.0, 0.03, 0.15, 0.30),
    "email_typo": (0.0, 0.01, 0.02, 0.0),
    "gender_missing": (0.10, 0.0, 0.30, 0.30),
}
FIRST_NAME = ("first_typo", "first_nickname", "first_initial", "first_missing")
LAST_NAME = ("last_typo", "last_missing", "second_surname_dropped")
BIRTH = ("birth_missing", "birth_day_month_swapped", "birth_digit_slip")
ADDRESS = ("moved", "address_missing")
PHONE = ("phone_missing", "phone_old_number", "phone_digit_slip")
EMAIL = ("email_variant", "email_other", "email_missing", "email_typo")
TWO_EDITS = 0.2


def _exclusive(rng: np.random.Generator, cls: np.ndarray, kinds: tuple[str, ...]) -> np.ndarray:
    """0 = unchanged, i = kinds[i-1]: one categorical draw with the class's rates."""
    cum = np.cumsum([RATES[k] for k in kinds], axis=0)[:, cls]  # (kinds, records)
    return _first_below(rng.random(len(cls)), cum)


def _first_below(u: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """1 + index of the first cumulative rate above u, 0 when u is above them all."""
    hit = u[None, :] < cum
    return np.where(hit.any(0), hit.argmax(0) + 1, 0)


def _flag(rng: np.random.Generator, cls: np.ndarray, kind: str) -> np.ndarray:
    return rng.random(len(cls)) < np.array(RATES[kind])[cls]


def draw(rng: np.random.Generator, cls: np.ndarray) -> dict[str, np.ndarray]:
    """Variation codes per record (columns used by the record SQL in `records`)."""
    m = len(cls)
    rand = lambda: rng.integers(0, 1 << 30, m, dtype=np.int32)  # noqa: E731 - positions, letters in macros
    first = _exclusive(rng, cls, FIRST_NAME)
    last = _exclusive(rng, cls, LAST_NAME)
    two = rng.random(m) < TWO_EDITS
    codes = {
        # 1 typo, 2 two typos, 3 nickname, 4 initial with dot, 5 initial, 6 missing
        "fn_mode": np.select([first == 1, first == 2, first == 3, first == 4], [
            np.where(two, 2, 1), 3, np.where(rng.random(m) < 0.6, 4, 5), 6], 0),
        # 1 typo, 2 two typos, 6 missing, 7 first surname only
        "ln_mode": np.select([last == 1, last == 2, last == 3], [np.where(two, 2, 1), 6, 7], 0),
        "swap": _flag(rng, cls, "names_swapped"),
        "case": np.where(_flag(rng, cls, "case_changed"), rng.integers(1, 4, m), 0),
        "ws": np.where(_flag(rng, cls, "whitespace"), rng.integers(1, 5, m), 0),
        # 1 missing, 2 day/month swapped, 3 one-digit slip
        "birth_mode": _exclusive(rng, cls, BIRTH),
        # 1 old address, 2 missing
        "addr_mode": _exclusive(rng, cls, ADDRESS),
        # 1 other number, 2 letter suffix, 3 range
        "house_mode": np.where(_flag(rng, cls, "house_number_changed"), rng.integers(1, 4, m), 0),
        "postcode_typo": _flag(rng, cls, "postcode_typo"),
        "street_abbrev": _flag(rng, cls, "street_abbreviated"),
        "street_typo": _flag(rng, cls, "street_typo"),
        "city_typo": _flag(rng, cls, "city_typo"),
        # 1 missing, 2 old number, 3 one-digit slip
        "phone_mode": _exclusive(rng, cls, PHONE),
        # 1 variant, 2 other address, 3 missing, 4 typo
        "email_mode": _exclusive(rng, cls, EMAIL),
        "gender_missing": _flag(rng, cls, "gender_missing"),
        "r_fn": rand(), "r_ln": rand(), "r_addr": rand(), "r_phone": rand(), "r_mail": rand(),
        "r_birth": rand(),
    }
    return {k: v.astype(np.int8) if v.dtype != np.int32 and v.dtype != bool else v for k, v in codes.items()}


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    """SQL macros that apply one kind of mistake to a string, date or number."""
    con.execute("""
        CREATE OR REPLACE MACRO edit_at(s, k, pos, r) AS CASE k
            WHEN 0 THEN left(s, pos - 1) || substr(s, pos + 1)
            WHEN 1 THEN left(s, pos - 1) || substr(s, pos + 1, 1) || substr(s, pos, 1) || substr(s, pos + 2)
            WHEN 2 THEN left(s, pos) || substr(s, pos, 1) || substr(s, pos + 1)
            ELSE left(s, pos - 1)
                 || CASE WHEN pos = 1 THEN upper(substr('eaiounrstlcdmhgbpkvwy', 1 + r % 21, 1))
                         ELSE substr('eaiounrstlcdmhgbpkvwy', 1 + r % 21, 1) END
                 || substr(s, pos + 1) END
    """)
    # One edit (deletion, transposition, doubled letter, substitution); the first letter
    # only one time in ten (Pollock & Zamora 1984: first letters are rarely wrong).
    con.execute("""
        CREATE OR REPLACE MACRO typo(s, r) AS CASE
            WHEN s IS NULL OR length(s) < 3 THEN s
            ELSE edit_at(s, r % 4, CASE WHEN (r // 4) % 10 = 0 THEN 1 ELSE 2 + (r // 40) % (length(s) - 2) END,
                         r // 7) END
    """)
    con.execute("""
        CREATE OR REPLACE MACRO digit_slip(s, r) AS CASE
            WHEN s IS NULL OR length(s) < 3 THEN s
            ELSE left(s, 2 + r % (length(s) - 2))
                 || coalesce(((TRY_CAST(substr(s, 3 + r % (length(s) - 2), 1) AS INTEGER) + 1 + (r // 97) % 9)
                              % 10)::VARCHAR, substr(s, 3 + r % (length(s) - 2), 1))
                 || substr(s, 4 + r % (length(s) - 2)) END
    """)
    con.execute("""
        CREATE OR REPLACE MACRO postcode_typo(s, r) AS CASE
            WHEN s IS NULL OR length(s) < 3 THEN s
            WHEN TRY_CAST(substr(s, 1 + r % length(s), 1) AS INTEGER) IS NOT NULL
                THEN left(s, r % length(s))
                     || ((substr(s, 1 + r % length(s), 1)::INTEGER + 1 + (r // 97) % 9) % 10)::VARCHAR
                     || substr(s, 2 + r % length(s))
            ELSE edit_at(s, 1, 1 + r % (length(s) - 1), r) END
    """)
    con.execute("""
        CREATE OR REPLACE MACRO house_change(s, mode, r) AS CASE
            WHEN s IS NULL OR mode = 0 OR NOT regexp_matches(s, '[0-9]') THEN s
            ELSE regexp_replace(s, '[0-9]+', CASE mode
                WHEN 1 THEN CASE WHEN length(regexp_extract(s, '[0-9]+')) > 1 AND r % 2 = 0
                                 THEN reverse(regexp_extract(s, '[0-9]+'))
                                 ELSE (regexp_extract(s, '[0-9]+')::INTEGER + 1 + r % 3)::VARCHAR END
                WHEN 2 THEN regexp_extract(s, '[0-9]+') || substr('abc', 1 + r % 3, 1)
                ELSE regexp_extract(s, '[0-9]+') || '-' || (regexp_extract(s, '[0-9]+')::INTEGER + 2)::VARCHAR
            END) END
    """)
    con.execute("""
        CREATE OR REPLACE MACRO street_abbrev(s) AS
            replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(s,
                ' Street', ' St'), ' Road', ' Rd'), ' Avenue', ' Ave'), ' Lane', ' Ln'),
                'straße', 'str.'), 'Straße', 'Str.'), 'straat', 'str'), 'Calle ', 'C/ '),
                'rue ', 'r. '), 'boulevard ', 'bd ')
    """)
    # Day and month swapped where both can be a month; one-digit slips of day, month, year
    # or decade otherwise.
    con.execute("""
        CREATE OR REPLACE MACRO birth_slip(b, mode, r) AS CASE
            WHEN mode = 2 AND day(b) <= 12 AND day(b) <> month(b) THEN make_date(year(b), day(b), month(b))
            WHEN mode IN (2, 3) THEN CASE r % 4
                WHEN 0 THEN b + CASE WHEN (r // 4) % 2 = 0 THEN 1 ELSE -1 END
                WHEN 1 THEN (b + to_months(CASE WHEN (r // 4) % 2 = 0 THEN 1 ELSE -1 END))::DATE
                WHEN 2 THEN (b + to_years(CASE WHEN (r // 4) % 2 = 0 THEN 1 ELSE -1 END))::DATE
                ELSE (b + to_years(CASE WHEN (r // 4) % 2 = 0 THEN 10 ELSE -10 END))::DATE END
            ELSE b END
    """)
