"""Dirty data planted on purpose, in small realistic proportions, and the log of what was planted.

Kinds (the keys of `<truth stem>_dirt.json`):
invalid_email, malformed_line, wrong_type, duplicate_event_id, late_event, unknown_sku,
negative_quantity, future_timestamp, missing_key.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

KINDS = ("invalid_email", "malformed_line", "wrong_type", "duplicate_event_id", "late_event",
         "unknown_sku", "negative_quantity", "future_timestamp", "missing_key")
RATES = {
    "invalid_email": 0.007, "malformed_line": 0.003, "wrong_type": 0.005,
    "duplicate_event_id": 0.008, "late_event": 0.007, "unknown_sku": 0.005,
    "negative_quantity": 0.005, "future_timestamp": 0.003, "missing_key": 0.003,
}
UNKNOWN_SKUS = 20  # product numbers past the catalogue end render as unknown SKUs


class DirtLog:
    """Counts per delivery date, table and kind."""

    def __init__(self) -> None:
        self.by_ds: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        self.junk: dict[str, int] = defaultdict(int)

    def add(self, ds: str, table: str, kind: str, n: int) -> None:
        if n:
            cell = self.by_ds[ds][table]
            cell[kind] = cell.get(kind, 0) + int(n)

    def to_dict(self) -> dict:
        totals = {k: 0 for k in KINDS}
        by_table: dict[str, dict[str, int]] = defaultdict(dict)
        for tables in self.by_ds.values():
            for table, kinds in tables.items():
                for kind, n in kinds.items():
                    totals[kind] += n
                    by_table[table][kind] = by_table[table].get(kind, 0) + n
        return {"counts": totals, "by_table": {t: dict(sorted(k.items())) for t, k in sorted(by_table.items())},
                "by_ds": {ds: {t: dict(sorted(k.items())) for t, k in sorted(v.items())}
                          for ds, v in sorted(self.by_ds.items())},
                "junk_values": dict(sorted(self.junk.items())),
                "rates": RATES}


def pick(rng: np.random.Generator, candidates: np.ndarray | int, kind: str, force: bool) -> np.ndarray:
    """Indices (sorted) drawn at the kind's rate; at least one when `force` and possible."""
    pool = np.arange(candidates) if isinstance(candidates, int | np.integer) else np.asarray(candidates)
    if len(pool) == 0:
        return pool.astype(np.int64)
    k = int(rng.binomial(len(pool), RATES[kind]))
    k = max(k, 1) if force else k
    return np.sort(rng.choice(pool, size=min(k, len(pool)), replace=False)).astype(np.int64)


def break_json(rng: np.random.Generator, lines: list[str]) -> list[str]:
    """Truncated or garbled JSON lines, as written by a crashing exporter."""
    out = []
    for i, line in enumerate(lines):  # a handful of lines per file
        cut = int(rng.integers(5, max(len(line) - 5, 6)))
        out.append(line[:cut] if i % 2 == 0 else line.replace('":', '"=', 1)[:-1])
    return out


def break_csv(rng: np.random.Generator, rows: list[tuple]) -> list[str]:
    """CSV rows with one field too many or too few (values carry no commas or quotes)."""
    out = []
    for row in rows:
        values = ["" if v is None else str(v).replace(",", " ").replace('"', "") for v in row]
        if rng.random() < 0.5:
            values = values[:-1]
        else:
            values.insert(int(rng.integers(1, len(values))), "x")
        out.append(",".join(values))
    return out
