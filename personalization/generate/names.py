"""How common each first and last name is: country vocabularies with Zipf-like frequencies.

Real name frequencies have a heavy head (Smith, García, Müller) and a very long tail of rare
names. A country's native vocabulary is ordered from common to rare: its most common names
(published rankings), then the rest of Faker's list for the country, then rare compounds
built from its own names (Kleinschmidt, Dubernard, van Dijkstra). Native weights follow a
Zipf-Mandelbrot law p(r) ~ (r + q)^-s whose two parameters are solved so that the top name's
share and the share of the top-K names match published figures (docs/generator.md). Residents
born abroad (a published share per country) carry surnames of other origins: every other
Latin-script Faker locale, Zipf-weighted. First names travel: that pool is the common tail of
every country's first names. Built once per process (cached); nothing depends
on the run's seed.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

import numpy as np

# Published calibration points (see docs/generator.md for sources and rounding).
# Shape: share of the population covered by the K most common names, from the US Census
# (2000 surnames: top 1,000 cover ~40 %; 1990 first names: top 1,219 male names and top
# 4,275 female names cover 90 %). Used for every country: other offices publish top shares
# but rarely coverage.
SURNAME_COVER = (1000, 0.40)
# Spain's surnames are far more concentrated (INE: the ten most common first surnames,
# García to Martín, are borne by about 17.5 % of residents).
SURNAME_COVER_BY_COUNTRY = {"ES": (10, 0.175)}
MALE_COVER = (1219, 0.90)
FEMALE_COVER = (4275, 0.90)

# country: (share of the most common surname, male first name, female first name) and the
# most common names in rank order.
TOP_SHARE = {
    "US": (0.0083, 0.033, 0.026),
    "GB": (0.011, 0.025, 0.018),
    "DE": (0.0085, 0.018, 0.015),
    "FR": (0.004, 0.025, 0.02),
    "NL": (0.005, 0.012, 0.015),
    "ES": (0.031, 0.029, 0.026),
}
HEAD_LAST = {
    "US": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
           "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor"),
    "GB": ("Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
           "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards"),
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder"),
    "FR": ("Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
           "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand"),
    "NL": ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
           "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks"),
    "ES": ("García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez",
           "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez"),
}
HEAD_MALE = {
    "US": ("James", "John", "Robert", "Michael", "William", "David", "Richard", "Charles", "Joseph",
           "Thomas", "Christopher", "Daniel"),
    "GB": ("David", "John", "Paul", "Michael", "Andrew", "Peter", "James", "Robert", "Mark", "Richard",
           "Thomas", "Christopher"),
    "DE": ("Peter", "Michael", "Thomas", "Andreas", "Wolfgang", "Klaus", "Jürgen", "Günter", "Stefan",
           "Christian", "Uwe", "Werner"),
    "FR": ("Jean", "Pierre", "Michel", "André", "Philippe", "Alain", "Nicolas", "Jacques", "Bernard",
           "Christophe", "Daniel", "Patrick"),
    "NL": ("Jan", "Johannes", "Peter", "Cornelis", "Hendrik", "Willem", "Gerrit", "Pieter", "Dirk",
           "Jacob", "Mark", "Thomas"),
    "ES": ("Antonio", "José", "Manuel", "Francisco", "David", "Juan", "Javier", "Daniel", "Carlos",
           "Jesús", "Alejandro", "Miguel"),
}
HEAD_FEMALE = {
    "US": ("Mary", "Patricia", "Linda", "Barbara", "Elizabeth", "Jennifer", "Maria", "Susan", "Margaret",
           "Dorothy", "Lisa", "Nancy"),
    "GB": ("Susan", "Sarah", "Margaret", "Elizabeth", "Patricia", "Mary", "Karen", "Helen", "Julie",
           "Emma", "Claire", "Jennifer"),
    "DE": ("Ursula", "Monika", "Petra", "Elisabeth", "Sabine", "Renate", "Helga", "Karin", "Brigitte",
           "Ingrid", "Andrea", "Stefanie"),
    "FR": ("Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Martine", "Christine",
           "Monique", "Sandrine", "Valérie", "Nicole"),
    "NL": ("Maria", "Anna", "Johanna", "Elisabeth", "Cornelia", "Wilhelmina", "Hendrika", "Sandra",
           "Linda", "Monique", "Petra", "Anja"),
    "ES": ("María Carmen", "María", "Carmen", "Ana María", "Laura", "María Pilar", "María Dolores",
           "Isabel", "Josefa", "Ana", "Cristina", "Marta"),
}
# Residents born abroad (rounded national statistics, ~2020): their names come from the
# pool of other origins.
FOREIGN_ORIGIN_SHARE = {"US": 0.14, "GB": 0.14, "DE": 0.18, "FR": 0.13, "NL": 0.14, "ES": 0.15}
FOREIGN_TOP_SHARE = 0.005  # origins are many: no single foreign name is common
FAKER_LOCALE = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "NL": "nl_NL", "ES": "es_ES"}
# Rare compounds of a country's own surnames: (prefixes glued to the lower-cased name,
# suffixes appended).
COMPOUNDS = {
    "US": (("Mc", "O'"), ("son", "s", "ton", "ley", "wood", "field", "ford", "well")),
    "GB": (("Mc", "O'"), ("son", "s", "ton", "ley", "wood", "field", "ford", "well")),
    "DE": (("Neu", "Alt", "Klein", "Groß", "Ober", "Unter", "Hoch", "Brand"),
           ("mann", "er", "ke", "bauer", "meier", "huber", "berger", "stein")),
    "FR": (("Du", "Le", "La", "Des"), ("eau", "et", "ot", "in", "ard", "ier")),
    "NL": (("van ", "van der ", "ter ", "ten "), ("s", "sen", "ink", "ema", "stra")),
    "ES": (("San ", "de ", "del ", "Villa"), ("o", "ero", "ado")),
}


@dataclass(frozen=True)
class Names:
    """One list of names, most common first, with the probability of each."""

    values: np.ndarray  # object array of str
    p: np.ndarray


def zipf_mandelbrot(n: int, top_share: float, cover_k: int, cover_share: float) -> np.ndarray:
    """Probabilities p(r) ~ (r + q)^-s, r = 1..n, with p(1) = top_share and sum(p[:k]) = cover_share.

    Both constraints are met when reachable for this n; otherwise the nearest attainable law.
    """
    k = min(cover_k, n)
    m = min(n, max(k, 2000))  # exact sums up to rank m, the midpoint integral beyond
    head_ranks = np.arange(1, m + 1, dtype=np.float64)

    def total(q: float, s: float) -> float:
        a, b = m + 0.5 + q, n + 0.5 + q
        tail = np.log(b / a) if abs(s - 1) < 1e-9 else (b ** (1 - s) - a ** (1 - s)) / (1 - s)
        return float(((head_ranks + q) ** -s).sum() + tail)

    def solve_q(s: float) -> float:
        lo, hi = 1e-6, 1e6  # p(1) falls as q grows: bisect on q in log space
        for _ in range(45):
            q = np.sqrt(lo * hi)
            if (1 + q) ** -s / total(q, s) > top_share:
                lo = q
            else:
                hi = q
        return hi

    s_lo, s_hi = 0.2, 6.0  # coverage of the top k grows with s
    for _ in range(30):
        s = (s_lo + s_hi) / 2
        q = solve_q(s)
        if ((head_ranks[:k] + q) ** -s).sum() / total(q, s) < cover_share:
            s_lo = s
        else:
            s_hi = s
    s = (s_lo + s_hi) / 2
    w = (np.arange(1, n + 1, dtype=np.float64) + solve_q(s)) ** -s
    return w / w.sum()


def zipf_with_top(n: int, top_share: float) -> np.ndarray:
    """p(r) ~ 1 / (r + q) over n ranks with q solved so that p(1) = top_share (or uniform)."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    lo, hi = 1e-6, 1e9
    for _ in range(60):
        q = np.sqrt(lo * hi)
        w = 1.0 / (ranks + q)
        lo, hi = (q, hi) if w[0] / w.sum() > top_share else (lo, q)
    w = 1.0 / (ranks + hi)
    return w / w.sum()


def _listed(values) -> list[str]:
    names = values.keys() if hasattr(values, "keys") else values
    return [v.strip() for v in names if v and v.strip()]


def _latin(name: str) -> bool:
    return all(ord(ch) < 0x250 for ch in name)


@cache
def _foreign_pools() -> dict[str, tuple[str, ...]]:
    """Names from every Latin-script Faker locale, per list (sorted, for determinism)."""
    import faker.providers.person as person

    pools: dict[str, set[str]] = {"last_names": set(), "first_names_male": set(), "first_names_female": set()}
    for module in pkgutil.iter_modules(person.__path__):
        try:
            provider = importlib.import_module(f"faker.providers.person.{module.name}").Provider
        except ImportError:  # pragma: no cover - a locale module that needs extras
            continue
        last = _listed(getattr(provider, "last_names", ()) or ())
        if not last or sum(map(_latin, last)) < 0.9 * len(last):
            continue
        for attr, pool in pools.items():
            pool.update(n for n in _listed(getattr(provider, attr, ()) or ()) if _latin(n))
    return {k: tuple(sorted(v)) for k, v in pools.items()}


def _ordered(head: tuple[str, ...], *groups: list[str], seed: int) -> np.ndarray:
    """Head first, then each group shuffled (fixed seed), without repeats."""
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    for group in (list(head), *[list(np.array(g, dtype=object)[rng.permutation(len(g))]) for g in groups]):
        for name in group:
            if name not in seen:
                seen.add(name)
                out.append(name)
    return np.array(out, dtype=object)


def _compounds(country: str, own: list[str]) -> list[str]:
    prefixes, suffixes = COMPOUNDS[country]
    simple = [n for n in own if " " not in n and "-" not in n and "'" not in n]
    out = [p + (n.lower() if not p.endswith(" ") else n) for p in prefixes for n in simple]
    out += [n + s for s in suffixes for n in simple if not n.endswith(s)]
    return out


def _mixed(native: np.ndarray, p_native: np.ndarray, foreign: tuple[str, ...], share: float,
           seed: int) -> Names:
    """Native names with `1 - share` of the mass, names of other origins (Zipf, s = 1) with `share`."""
    order = np.random.default_rng(seed).permutation(len(foreign))
    other = np.array(foreign, dtype=object)[order]
    p_other = zipf_with_top(len(other), FOREIGN_TOP_SHARE)
    return Names(np.concatenate([native, other]), np.concatenate([(1 - share) * p_native, share * p_other]))


@cache
def country_names(country: str) -> dict[str, Names]:
    """`first_male`, `first_female` and `last` name lists of a country with their probabilities."""
    provider = importlib.import_module(f"faker.providers.person.{FAKER_LOCALE[country]}").Provider
    pools = _foreign_pools()
    salt = sum(map(ord, country))
    share = FOREIGN_ORIGIN_SHARE[country]
    # Foreign-origin residents rarely carry a top-1,000 native surname: the native law
    # carries the published top share and coverage within the native population.
    last_top = TOP_SHARE[country][0] / (1 - share)
    cover_k, cover = SURNAME_COVER_BY_COUNTRY.get(country, SURNAME_COVER)
    own_last = _listed(provider.last_names)
    last = _ordered(HEAD_LAST[country], own_last, _compounds(country, list(HEAD_LAST[country]) + own_last),
                    seed=salt)
    # First names travel: the pool of every origin is the common tail of every country.
    male = _ordered(HEAD_MALE[country], _listed(provider.first_names_male), list(pools["first_names_male"]),
                    seed=salt + 1)
    female = _ordered(HEAD_FEMALE[country], _listed(provider.first_names_female),
                      list(pools["first_names_female"]), seed=salt + 2)
    return {
        "last": _mixed(last, zipf_mandelbrot(len(last), last_top, cover_k, min(cover / (1 - share), 0.99)),
                       pools["last_names"], share, salt),
        "first_male": Names(male, zipf_mandelbrot(len(male), TOP_SHARE[country][1], *MALE_COVER)),
        "first_female": Names(female, zipf_mandelbrot(len(female), TOP_SHARE[country][2], *FEMALE_COVER)),
    }
