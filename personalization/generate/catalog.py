"""The shop's product catalogue: categories, Zipf popularity, companions (co-bought items)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from personalization.generate import vocab as V

PRODUCTS_PER_CATEGORY = 48
RETIRED_SHARE = 0.04
LAUNCHED_LATER_SHARE = 0.03


@dataclass
class Catalog:
    """Products sorted by category; index = product number."""

    sku: np.ndarray  # object array of str
    name: np.ndarray
    category: np.ndarray  # index into vocab.CATEGORIES
    price: np.ndarray  # EUR
    active: np.ndarray
    launch_day: np.ndarray  # day offset from start (<= 0: already on sale)
    popularity: np.ndarray
    companions: np.ndarray  # (n_products, 3): products often bought together with this one

    def sellable(self, day: int) -> np.ndarray:
        return self.active & (self.launch_day <= day)

    def sample(self, rng: np.random.Generator, cats: np.ndarray, day: int) -> np.ndarray:
        """One product per entry of `cats`, by popularity among sellable products of that category."""
        out = np.empty(len(cats), dtype=np.int64)
        ok = self.sellable(day)
        u = rng.random(len(cats))
        for c in range(len(V.CATEGORIES)):
            mask = cats == c
            if not mask.any():
                continue
            idx = np.flatnonzero((self.category == c) & ok)
            cdf = np.cumsum(self.popularity[idx])
            out[mask] = idx[np.minimum(np.searchsorted(cdf, u[mask] * cdf[-1]), len(idx) - 1)]
        return out

    def table(self, day: int) -> pa.Table:
        """Full catalogue as delivered on `day`: every product launched by then."""
        keep = self.launch_day <= day
        return pa.table({
            "sku": pa.array(self.sku[keep], pa.string()),
            "name": pa.array(self.name[keep], pa.string()),
            "category": pa.array(np.array(V.CATEGORIES, dtype=object)[self.category[keep]], pa.string()),
            "price": pa.array(self.price[keep]),
            "active": pa.array(self.active[keep]),
        })


def build_catalog(seed: int, days: int) -> Catalog:
    """Draw the catalogue (its size does not depend on the number of customers)."""
    rng = np.random.default_rng([seed, 3])
    n_cat = len(V.CATEGORIES)
    m = n_cat * PRODUCTS_PER_CATEGORY
    category = np.repeat(np.arange(n_cat), PRODUCTS_PER_CATEGORY)
    rank = np.tile(np.arange(PRODUCTS_PER_CATEGORY), n_cat)
    popularity = 1.0 / (rank + 1.0) ** 0.9  # Zipf within each category
    base = np.array([V.CATEGORY_PRICE_EUR[c] for c in V.CATEGORIES])[category]
    price = np.round(base * rng.lognormal(0, 0.45, m), 0) - 0.01
    price = np.maximum(price, 2.99)
    names, skus = [], []
    for i in range(m):  # a few hundred products: built once
        cat = V.CATEGORIES[category[i]]
        nouns = V.PRODUCT_NOUNS[cat]
        names.append(f"{V.PRODUCT_ADJECTIVES[rng.integers(len(V.PRODUCT_ADJECTIVES))]} "
                      f"{nouns[rng.integers(len(nouns))]} {chr(65 + i % 26)}{i // 26 % 10}")
        skus.append(f"{cat[:2].upper()}-{10000 + i}")
    u = rng.random(m)
    active = u >= RETIRED_SHARE
    launch = np.where(u > 1 - LAUNCHED_LATER_SHARE, rng.integers(1, max(days, 2), m), -rng.integers(30, 900, m))
    companions = np.empty((m, 3), dtype=np.int64)
    for c, cat in enumerate(V.CATEGORIES):
        other = V.CATEGORIES.index(V.COMPANION_CATEGORY[cat])
        pool = np.flatnonzero(category == other)
        rows = np.flatnonzero(category == c)
        # Companions are drawn from the popular end of the companion category.
        companions[rows] = pool[rng.integers(0, max(len(pool) // 3, 1), (len(rows), 3))]
    return Catalog(sku=np.array(skus, dtype=object), name=np.array(names, dtype=object),
                   category=category, price=price, active=active, launch_day=launch,
                   popularity=popularity, companions=companions)
