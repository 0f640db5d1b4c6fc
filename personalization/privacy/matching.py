"""Which rows belong to an erased person: SQL conditions built from a relation's columns.

A column identifies a person when its name says so (the names are the product's contract:
`docs/warehouse.md`, `docs/exports.md`); its value is hashed the way the ledger stores that
kind of key and looked up there. Quarantined lines have no columns, only the raw text:
every token of it is tried as an email and as each kind of id.
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb

from personalization.privacy.emails import email_sha256_sql
from personalization.privacy.ledger import TABLE
from personalization.sql import identifier

# column -> (ledger kind, SQL hash of the value `{c}`)
_EMAIL = email_sha256_sql("{c}")
COLUMN_KEYS: dict[str, tuple[str, str]] = {
    "email": ("email", _EMAIL),
    "email_normalized": ("email", _EMAIL),
    "email_sha256": ("email", "lower(trim({c}))"),
    "contact_id": ("record", "sha256('crm:' || {c})"),
    "customer_id": ("record", "sha256('shop:' || {c})"),
    "anonymous_id": ("record", "sha256('pixel:' || {c})"),
    "record_key": ("record", "sha256({c})"),
    "node_a": ("record", "sha256({c})"),
    "node_b": ("record", "sha256({c})"),
    "order_id": ("order", "sha256('order:' || {c})"),
    "first_order_id": ("order", "sha256('order:' || {c})"),
    **{name: ("unified", "sha256('unified:' || {c})") for name in (
        "unified_id", "absorbed_unified_id", "surviving_unified_id", "previous_unified_id",
        "original_unified_id", "new_unified_id")},
}

# Token kinds tried on a quarantined raw line: (ledger kind, SQL hash of token `t`).
TOKEN_KEYS = (
    ("email", "sha256(lower(t))"),
    ("email", "lower(t)"),  # an email_sha256 value
    ("record", "sha256('crm:' || t)"),
    ("record", "sha256('shop:' || t)"),
    ("record", "sha256('pixel:' || t)"),
    ("order", "sha256('order:' || t)"),
)
TOKEN_SPLIT = r'[\s,;"{}\[\]:]+'


def _in_ledger(hash_sql: str, kind: str, ledger: str) -> str:
    return (f"({hash_sql}) IN (SELECT key_sha256 FROM {ledger} WHERE key_kind = '{kind}')")


def ledger_kinds(con: duckdb.DuckDBPyConnection, ledger: str) -> frozenset[str]:
    """The key kinds `ledger` holds. A column or token of another kind cannot match, so the
    erasure does not scan it: a night whose only pending keys are orders arriving for a
    person erased earlier reads the order tables, not every copy (66 s at 1M before)."""
    return frozenset(r[0] for r in con.execute(f"SELECT DISTINCT key_kind FROM {ledger}").fetchall())


def erased_condition(columns: list[str], alias: str = "", ledger: str = TABLE,
                     source: str | None = None,
                     kinds: Collection[str] | None = None) -> str | None:
    """SQL true for rows of a relation with these columns that belong to an erased person;
    None when no column identifies a person (of `kinds`, when given: see `ledger_kinds`).

    `source`: the relation itself (ignores `alias`). Each key column's *distinct* values are
    then hashed once and the rows are matched on the plain values: a lake or warehouse table
    repeats a person's cookie, account and email on every event, so this hashes a fraction of
    what hashing every row would (sha256 is the cost of a scan)."""
    prefix = f"{alias}." if alias and source is None else ""
    lowered = {c.lower(): c for c in columns}
    values = [(f"CAST({prefix}{identifier(lowered[name])} AS VARCHAR)", kind, hash_sql)
              for name, (kind, hash_sql) in COLUMN_KEYS.items() if name in lowered]
    if "source" in lowered and "source_id" in lowered:
        values.append((f"{prefix}{identifier(lowered['source'])} || ':' || "
                       f"{prefix}{identifier(lowered['source_id'])}", "record", "sha256({c})"))
    if kinds is not None:
        values = [v for v in values if v[1] in kinds]
    if not values:
        return None
    if source is None:
        parts = [_in_ledger(hash_sql.format(c=value), kind, ledger) for value, kind, hash_sql in values]
    else:
        parts = [f"({value}) IN (SELECT v FROM (SELECT DISTINCT {value} AS v FROM {source}) "
                 f"WHERE {_in_ledger(hash_sql.format(c='v'), kind, ledger)})"
                 for value, kind, hash_sql in values]
    return "coalesce(" + " OR ".join(parts) + ", false)"


def tokens_can_match(kinds: Collection[str]) -> bool:
    """Whether a raw line's tokens can match keys of `kinds` (person ids are not tried)."""
    return any(kind in kinds for kind, _ in TOKEN_KEYS)


def raw_hits_sql(relation: str, raw_column: str, rid_column: str, ledger: str = TABLE,
                 kinds: Collection[str] | None = None) -> str:
    """SELECT of the `rid_column` values of rows of `relation` whose raw text holds any token
    that is in the ledger (quarantined lines: an email, an id, an email hash); only tokens
    tried as `kinds`, when given (at least one of which `tokens_can_match`).

    Each distinct token is hashed once (a file repeats JSON keys, cookies, agents on every
    line: ~45 tokens a line, ~1.2 distinct), then the lines holding a hit token are found."""
    tries = " OR ".join(_in_ledger(sql, kind, ledger) for kind, sql in TOKEN_KEYS
                        if kinds is None or kind in kinds)
    return f"""
        WITH tokens AS MATERIALIZED (
            SELECT {rid_column} AS rid,
                   unnest(regexp_split_to_array(coalesce({raw_column}, ''), '{TOKEN_SPLIT}')) AS t
            FROM {relation}),
        hit_tokens AS (SELECT t FROM (SELECT DISTINCT t FROM tokens WHERE t <> '') WHERE {tries})
        SELECT DISTINCT rid FROM tokens WHERE t IN (SELECT t FROM hit_tokens)"""
