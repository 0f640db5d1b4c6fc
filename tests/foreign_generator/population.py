"""The true people behind the landing files, drawn as numpy arrays (one row per person).

What makes this population hard to resolve, on purpose:
- names are Zipf-distributed over short national lists, so namesakes are everywhere;
- street names and house numbers are Zipf too: "Hauptstraße 1" exists in dozens of towns;
- households: partners share the last name, the address and often the landline;
- planted namesakes (`namesake_share`): a second person with the same first and last name,
  in another town, half of them at the same street and house number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .vocabulary import COUNTRIES, STREET_TAIL, SURNAME_PARTS, TRADITION

HISTORY_DAYS = 730  # people appear over two years before the first delivery


@dataclass(frozen=True)
class Options:
    """Knobs of one generated data set (defaults: the benchmark's realistic mix).

    Attributes:
        dirt_rate: share of rows per file turned into a dirty row of the usual kinds.
        duplicate_share: share of people with a second record in a system they use.
        namesake_share: share of people given the name of another person elsewhere.
        household_share: share of people living with a partner (same name and address).
        edge_cases: plant the rare edge cases (empty and all-bad files, very long fields,
            events of unknown customers, stale re-deliveries, ...).
        events_per_day: mean pixel sessions per person and day.
    """

    dirt_rate: float = 0.01
    duplicate_share: float = 0.12
    namesake_share: float = 0.01
    household_share: float = 0.10
    edge_cases: bool = True
    events_per_day: float = 0.06


def zipf_choice(rng: np.random.Generator, size: int, n: int, exponent: float = 1.0) -> np.ndarray:
    """Indices into a list of `n`, the first ones most frequent (weight 1 / rank^exponent)."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.choice(n, size=size, p=weights / weights.sum())


def _pick(rng, values: tuple[str, ...], size: int, exponent: float = 1.0) -> np.ndarray:
    return np.asarray(values, dtype=object)[zipf_choice(rng, size, len(values), exponent)]


def tail_names(rng, country: str, size: int) -> np.ndarray:
    """Rarer surnames put together from a prefix and a suffix of the country's tradition."""
    prefixes, suffixes = SURNAME_PARTS[TRADITION[country]]
    pre = np.asarray(prefixes, dtype=object)[rng.integers(0, len(prefixes), size)]
    suf = np.asarray(suffixes, dtype=object)[rng.integers(0, len(suffixes), size)]
    return pre + suf


def _surnames(rng, c, size: int) -> np.ndarray:
    """Half from the commonest names (Zipf), half from the long tail."""
    out = _pick(rng, c.last, size, 0.8)
    tail = rng.random(size) < 0.5
    out[tail] = tail_names(rng, c.code, int(tail.sum()))
    return out


def _first_names(rng, names: tuple[str, ...], size: int) -> np.ndarray:
    """Zipf over the list, and some double names (Anna-Lena, Jean-Pierre)."""
    out = _pick(rng, names, size, 0.7)
    double = rng.random(size) < 0.12
    out[double] = out[double] + "-" + _pick(rng, names, int(double.sum()), 0.7)
    return out


def _postcodes(rng, base: np.ndarray, town_rank: np.ndarray) -> np.ndarray:
    """Big towns have many postcodes: the last digit(s) of the town's first code vary."""
    variants = np.maximum(1, 40 // (town_rank + 1))
    pick = rng.integers(0, 1 << 30, len(base)) % variants
    out = base.copy()
    for i in np.nonzero(pick)[0]:
        code, k = base[i], int(pick[i])
        digits = [j for j, ch in enumerate(code) if ch.isdigit()]
        j = digits[-1] if code[-1].isdigit() else digits[min(len(digits) - 1, 1)]
        out[i] = code[:j] + str((int(code[j]) + k) % 10) + code[j + 1:]
        if k >= 10 and len(digits) > 1 and code[-1].isdigit():
            j2 = digits[-2]
            out[i] = out[i][:j2] + str((int(code[j2]) + k // 10) % 10) + out[i][j2 + 1:]
    return out


def _addresses(rng, country_idx: np.ndarray) -> dict[str, np.ndarray]:
    n = len(country_idx)
    street, town, postcode = (np.empty(n, dtype=object) for _ in range(3))
    # House numbers fall off slowly: 1 is the commonest in every street of every town.
    house = zipf_choice(rng, n, 150, 0.5) + 1
    for ci, c in enumerate(COUNTRIES):
        m = country_idx == ci
        k = int(m.sum())
        if not k:
            continue
        names = _pick(rng, c.streets, k, 0.8)
        tail = rng.random(k) < 0.5
        patterns = np.asarray(STREET_TAIL[c.code], dtype=object)[rng.integers(0, len(STREET_TAIL[c.code]), k)]
        names[tail] = [p.replace("{s}", s) for p, s in
                       zip(patterns[tail], tail_names(rng, c.code, int(tail.sum())), strict=True)]
        street[m] = names
        towns = zipf_choice(rng, k, len(c.towns), 0.8)
        town[m] = np.asarray([t[0] for t in c.towns], dtype=object)[towns]
        postcode[m] = _postcodes(rng, np.asarray([t[1] for t in c.towns], dtype=object)[towns], towns)
    street = np.asarray([s.replace("{n}", str(h)) for s, h in zip(street, house, strict=True)],
                        dtype=object)
    return {"street": street, "town": town, "postcode": postcode}


def _national_number(rng, n: int) -> np.ndarray:
    """Subscriber numbers: area code 2-4 digits + 6-7 digits, never all one digit."""
    area = rng.integers(20, 9999, n)
    line = rng.integers(1_000_000, 9_999_999, n)
    return np.asarray([f"{a}{b}" for a, b in zip(area, line, strict=True)], dtype=object)


def _mailbox(address: str) -> str:
    """The mailbox an address reaches: Gmail ignores dots and reads googlemail.com as
    gmail.com, so emma.fischer@gmail.com and emmafischer@googlemail.com cannot belong to
    two people."""
    local, domain = address.split("@")
    if domain in ("gmail.com", "googlemail.com"):
        return f"{local.replace('.', '')}@gmail.com"
    return address


def _emails(rng, first: np.ndarray, last: np.ndarray, country_idx: np.ndarray) -> np.ndarray:
    """Unique addresses built from the name; a namesake gets a number, as providers do."""
    pattern = rng.integers(0, 4, len(first))
    domains = np.empty(len(first), dtype=object)
    for ci, c in enumerate(COUNTRIES):
        m = country_idx == ci
        domains[m] = _pick(rng, c.domains, int(m.sum()), 0.8)
    out = np.empty(len(first), dtype=object)
    seen: set[str] = set()
    for i, (f, la, p, d) in enumerate(zip(first, last, pattern, domains, strict=True)):
        f_ = ascii_fold(f).lower().replace(" ", "").replace("'", "")
        l_ = ascii_fold(la).lower().replace(" ", "").replace("'", "")
        local = (f"{f_}.{l_}", f"{f_[0]}{l_}", f"{f_}{l_}", f"{l_}.{f_}")[p]
        candidate, k = f"{local}@{d}", 1
        while _mailbox(candidate) in seen:
            k += 1
            candidate = f"{local}{k}@{d}" if k < 5 else f"{local}{rng.integers(10, 99999)}@{d}"
        seen.add(_mailbox(candidate))
        out[i] = candidate
    return out


_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss",
                       "é": "e", "è": "e", "ê": "e", "ë": "e", "É": "E", "à": "a", "â": "a",
                       "ç": "c", "î": "i", "ï": "i", "ô": "o", "û": "u", "ù": "u", "ó": "o",
                       "ą": "a", "ć": "c", "ę": "e", "ł": "l", "Ł": "L", "ń": "n", "ś": "s",
                       "ź": "z", "ż": "z", "Ż": "Z", "Ś": "S", "å": "a", "Å": "A", "á": "a",
                       "í": "i", "ú": "u"})


def ascii_fold(text: str) -> str:
    """How an old system without Unicode would spell a name (Müller -> Mueller, Łukasz -> Lukasz)."""
    return text.translate(_FOLD)


def draw_people(n: int, days: int, rng: np.random.Generator, options: Options) -> pd.DataFrame:
    """One row per true person: identity attributes, household, systems used, activity rates.

    Columns: person_id, country, language, currency, utc_offset, calling_code, sex, first_name,
    last_name, birth_date, street, town, postcode, old_street, old_town, old_postcode,
    national_number, email, household_id, uses_crm, uses_shop, buys_as_guest, appear_day,
    order_rate, visit_rate, cookies.
    """
    weights = np.asarray([c.weight for c in COUNTRIES])
    country_idx = rng.choice(len(COUNTRIES), size=n, p=weights / weights.sum())
    sex = rng.integers(0, 2, n)
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    for ci, c in enumerate(COUNTRIES):
        for s, names in ((0, c.female), (1, c.male)):
            m = (country_idx == ci) & (sex == s)
            first[m] = _first_names(rng, names, int(m.sum()))
        m = country_idx == ci
        last[m] = _surnames(rng, c, int(m.sum()))
    address = _addresses(rng, country_idx)
    old = _addresses(rng, country_idx)
    birth = (np.datetime64("2008-01-01") - rng.integers(0, 62 * 365, n).astype("timedelta64[D]"))
    number = _national_number(rng, n)

    # Households: a partner moves in with the person before them (same name, address, landline).
    household = np.arange(n)
    partner = rng.random(n) < options.household_share
    partner[0] = False
    idx = np.nonzero(partner)[0]
    host = idx - 1
    household[idx] = household[host]
    country_idx[idx] = country_idx[host]
    last[idx] = last[host]
    for key in ("street", "town", "postcode"):
        address[key][idx] = address[key][host]
    shares_phone = idx[rng.random(len(idx)) < 0.4]
    number[shares_phone] = number[shares_phone - 1]

    # Planted namesakes: same first and last name as someone in another town; half of them
    # also at the same street and house number ("Hauptstraße 1" in another town).
    namesake = np.nonzero((rng.random(n) < options.namesake_share) & ~partner)[0]
    namesake = namesake[namesake > 0]
    of = rng.integers(0, n, len(namesake))
    ok = country_idx[of] == country_idx[namesake]
    namesake, of = namesake[ok], of[ok]
    first[namesake] = first[of]
    last[namesake] = last[of]
    sex[namesake] = sex[of]
    same_street = rng.random(len(namesake)) < 0.5
    address["street"][namesake[same_street]] = address["street"][of[same_street]]

    email = _emails(rng, first, last, country_idx)
    # Which systems know a person: CRM and shop 35 %, CRM only 25 %, shop only 20 %,
    # never identified (pixel only) 20 %.
    kind = rng.choice(4, size=n, p=[0.35, 0.25, 0.20, 0.20])
    uses_crm = np.isin(kind, [0, 1])
    uses_shop = np.isin(kind, [0, 2])
    buys_as_guest = (kind == 1) & (rng.random(n) < 0.35)
    appear = -rng.integers(0, HISTORY_DAYS, n)
    late = rng.random(n) < days / (HISTORY_DAYS + days)
    appear[late] = rng.integers(0, max(days, 1), int(late.sum()))
    codes = np.asarray([c.code for c in COUNTRIES], dtype=object)
    return pd.DataFrame({
        "person_id": [f"P{i:07d}" for i in range(n)],
        "country": codes[country_idx],
        "language": np.asarray([c.language for c in COUNTRIES], dtype=object)[country_idx],
        "currency": np.asarray([c.currency for c in COUNTRIES], dtype=object)[country_idx],
        "utc_offset": np.asarray([c.utc_offset for c in COUNTRIES], dtype=object)[country_idx],
        "calling_code": np.asarray([c.calling_code for c in COUNTRIES], dtype=object)[country_idx],
        "sex": np.where(sex == 0, "f", "m"),
        "first_name": first, "last_name": last, "birth_date": birth,
        "street": address["street"], "town": address["town"], "postcode": address["postcode"],
        "old_street": old["street"], "old_town": old["town"], "old_postcode": old["postcode"],
        "national_number": number, "email": email, "household_id": household,
        "uses_crm": uses_crm, "uses_shop": uses_shop, "buys_as_guest": buys_as_guest,
        "appear_day": appear,
        "order_rate": np.where(uses_shop | buys_as_guest, rng.gamma(0.7, 1 / 170, n), 0.0),
        "visit_rate": rng.gamma(0.6, options.events_per_day / 0.6, n),
        "cookies": 1 + rng.geometric(0.6, n) - 1,
    })
