"""Landing files in the contract's formats, with dirty rows of the usual kinds.

Clean rows are rendered in bulk (pandas `to_csv`, DuckDB `to_json`); dirt is then applied to
about `dirt_rate` of the rows of each file, in place of the clean row (so the record it
carried is lost that day, as when a real source sends a broken row). Which kinds were
planted, per file, is counted in the returned log.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

DAY = 86_400

CONTACT_COLUMNS = ("contact_id", "email", "first_name", "last_name", "phone", "street", "city",
                   "postcode", "country", "birth_date", "gender", "language", "created_at",
                   "updated_at", "email_opt_in", "opt_in_at", "unsubscribed_at")
CUSTOMER_COLUMNS = ("customer_id", "email", "first_name", "last_name", "phone", "street", "city",
                    "postcode", "country", "created_at", "updated_at")
PRODUCT_COLUMNS = ("sku", "name", "category", "price", "active")
ERASURE_COLUMNS = ("email", "requested_at")
EVENT_COLUMNS = ("event_id", "occurred_at", "anonymous_id", "customer_id", "email_sha256",
                 "event_type", "sku", "campaign_id", "variant", "url", "country", "city",
                 "device", "user_agent")


class Renderer:
    """Turns relative seconds into timestamp text and frames into landing files."""

    def __init__(self, start: date, rng: np.random.Generator, dirt_rate: float,
                 edge_cases: bool):
        self.epoch = (start - date(1970, 1, 1)).days * DAY
        self.start = start
        self.rng = rng
        self.dirt_rate = dirt_rate
        self.edge_cases = edge_cases
        self.planted: Counter[str] = Counter()
        self.con = duckdb.connect()

    def ds(self, day: int) -> date:
        return self.start + timedelta(days=day)

    # ---- values ---------------------------------------------------------------------------
    def timestamps(self, rel_s: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        """ISO-8601 text: mostly `...Z`, some local time with its offset (+02:00, -05:00),
        some without a zone (read as UTC), some with milliseconds."""
        rel = np.asarray(rel_s, dtype=float)
        missing = np.isnan(rel)
        n = len(rel)
        if not n:
            return np.empty(0, dtype=object)
        style = self.rng.choice(4, n, p=[0.7, 0.15, 0.1, 0.05]) if self.edge_cases else np.zeros(n, int)
        offsets = np.full(n, "+00:00", dtype=object) if offsets is None else np.asarray(offsets, dtype=object)
        shift = np.asarray([_offset_seconds(o) for o in offsets]) if len(offsets) else np.zeros(0)
        seconds = np.where(missing, 0, rel).astype(np.int64) + self.epoch
        seconds = seconds + np.where(style == 1, shift, 0)
        text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype(object)
        out = np.where(style == 0, text + "Z",
                       np.where(style == 1, text + offsets,
                                np.where(style == 2, np.char.replace(text.astype(str), "T", " ").astype(object),
                                         text + ".250Z")))
        out[missing] = None
        return out

    # ---- files ----------------------------------------------------------------------------
    def write_csv(self, path: Path, frame: pd.DataFrame, columns: tuple[str, ...],
                  dirt: list[str], key: str | None, all_bad: bool = False,
                  line_ending: str = "\n", bom: bool = False) -> None:
        """Write `frame[columns]` as CSV with dirt of the given kinds on ~dirt_rate rows."""
        frame = frame.loc[:, list(columns)].astype(object).reset_index(drop=True)
        n = len(frame)
        dirty = self._dirty_rows(n, all_bad) if dirt else np.zeros(0, dtype=int)
        kinds = self.rng.choice(dirt, size=len(dirty)) if dirt and len(dirty) else np.asarray([])
        line_kinds = {}
        for row, kind in zip(dirty, kinds, strict=True):
            if kind in ("wrong_field_count", "malformed_csv"):
                line_kinds[row] = kind
            else:
                _dirty_field(frame, row, kind, key, self.ds, self.rng)
            self.planted[f"{path.name}:{kind}"] += 1
        text = frame.to_csv(index=False, header=False, lineterminator="\n", na_rep="") if n else ""
        lines = text.split("\n")[:-1] if n else []
        for row, kind in line_kinds.items():
            line = lines[row]
            lines[row] = (line + ",surplus" if self.rng.random() < 0.5 else line.rsplit(",", 1)[0]) \
                if kind == "wrong_field_count" else '"' + line
        body = ",".join(columns) + "\n" + "".join(line + "\n" for line in lines)
        body = body.replace("\n", line_ending)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8"))

    def write_jsonl(self, path: Path, select_sql: str, tables: dict[str, pd.DataFrame],
                    dirt: list[str], mutate, all_bad: bool = False, gz: bool = False) -> None:
        """Render one JSON object per row with DuckDB (`select_sql` yields column `line`),
        then replace ~dirt_rate of the lines by dirty ones (`mutate(obj, kind)`)."""
        for name, frame in tables.items():
            self.con.register(name, frame)
        lines = [r[0] for r in self.con.execute(select_sql).fetchall()]
        for name in tables:
            self.con.unregister(name)
        dirty = self._dirty_rows(len(lines), all_bad)
        kinds = self.rng.choice(dirt, size=len(dirty)) if len(dirty) else []
        for row, kind in zip(dirty, kinds, strict=True):
            self.planted[f"{path.name}:{kind}"] += 1
            if kind == "invalid_json":
                lines[row] = lines[row][: max(1, len(lines[row]) // 2)]
            else:
                obj = json.loads(lines[row])
                mutate(obj, kind)
                lines[row] = json.dumps(obj, ensure_ascii=False)
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)

    def _dirty_rows(self, n: int, all_bad: bool) -> np.ndarray:
        if all_bad:
            return np.arange(n)
        if not n or not self.dirt_rate:
            return np.zeros(0, dtype=int)
        k = self.rng.binomial(n, self.dirt_rate)
        return np.sort(self.rng.choice(n, size=k, replace=False))


def _offset_seconds(offset: str) -> int:
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = offset[1:].split(":")
    return sign * (int(hours) * 3600 + int(minutes) * 60)


def _dirty_field(frame: pd.DataFrame, row: int, kind: str, key: str | None, ds, rng) -> None:
    """Spoil one field of one CSV row (kinds named after the reason extract should give)."""
    match kind:
        case "invalid_email":
            email = frame.at[row, "email"]
            email = email if isinstance(email, str) and "@" in email else "someone@web.de"
            frame.at[row, "email"] = (email.replace("@", " at "), email.split("@")[0] + "@",
                                      "@" + email.split("@")[-1], email.replace("@", "@@"))[int(rng.integers(0, 4))]
        case "bad_timestamp":
            column = "requested_at" if "requested_at" in frame else "updated_at"
            frame.at[row, column] = ("31.12.2025 10:00", "yesterday", "2025-02-30T10:00:00Z",
                                     "1712345678")[int(rng.integers(0, 4))]
        case "future_timestamp":
            column = "requested_at" if "requested_at" in frame else "updated_at"
            frame.at[row, column] = f"{(ds(0) + timedelta(days=400)).isoformat()}T09:00:00Z"
        case "missing_key":
            frame.at[row, key] = " " if rng.random() < 0.3 else None
        case "bad_date":
            frame.at[row, "birth_date"] = ("1984-13-45", "31/12/1980", "unknown")[int(rng.integers(0, 3))]
        case "bad_boolean":
            frame.at[row, "email_opt_in"] = ("maybe", "ja", "2")[int(rng.integers(0, 3))]
        case "bad_price":
            frame.at[row, "price"] = ("-4.99", "abc", "12,50")[int(rng.integers(0, 3))]
        case _:
            raise ValueError(f"unknown CSV dirt kind {kind!r}")


def mutate_order(obj: dict, kind: str) -> None:
    """Spoil one order (kinds named after the reason extract should give)."""
    match kind:
        case "non_positive_quantity":
            obj["items"][0]["quantity"] = 0 if len(obj["order_id"] or "") % 2 else -1
        case "missing_key":
            obj["order_id"] = None
        case "future_timestamp":
            obj["ordered_at"] = "2099-01-01T00:00:00Z"
        case "unknown_value":
            obj["status"] = "shipped"
        case "bad_timestamp":
            obj["ordered_at"] = "last tuesday"
        case "no_items":
            obj["items"] = []
        case "bad_type":
            obj["total_amount"] = "12,50"
        case "invalid_email":
            obj["email"] = "nobody(at)nowhere"
        case _:
            raise ValueError(f"unknown order dirt kind {kind!r}")


def mutate_event(obj: dict, kind: str) -> None:
    """Spoil one pixel event."""
    match kind:
        case "missing_key":
            obj["event_id"] = ""
        case "future_timestamp":
            obj["occurred_at"] = "2099-01-01T00:00:00Z"
        case "unknown_value":
            obj["event_type"] = "hover"
        case "bad_timestamp":
            obj["occurred_at"] = 1712345678
        case "bad_type":
            obj["email_sha256"] = "not-a-hash"
        case _:
            raise ValueError(f"unknown event dirt kind {kind!r}")
