"""Which rows belong to an erased person: SQL conditions built from a relation's columns.

A column identifies a person when its name says so (the names are the product's contract:
`docs/warehouse.md`, `docs/exports.md`); its value is hashed the way the ledger stores that
kind of key and looked up there. Quarantined lines have no columns, only the raw text:
every token of it is tried as an email and as each kind of id.
"""

from __future__ import annotations

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


def erased_condition(columns: list[str], alias: str = "", ledger: str = TABLE) -> str | None:
    """SQL true for rows of a relation with these columns that belong to an erased person;
    None when no column identifies a person."""
    prefix = f"{alias}." if alias else ""
    lowered = {c.lower(): c for c in columns}
    parts = []
    for name, (kind, hash_sql) in COLUMN_KEYS.items():
        if name in lowered:
            column = f"{prefix}{identifier(lowered[name])}"
            parts.append(_in_ledger(hash_sql.format(c=f"CAST({column} AS VARCHAR)"), kind, ledger))
    if "source" in lowered and "source_id" in lowered:
        parts.append(_in_ledger(
            f"sha256({prefix}{identifier(lowered['source'])} || ':' || "
            f"{prefix}{identifier(lowered['source_id'])})", "record", ledger))
    if not parts:
        return None
    return "coalesce(" + " OR ".join(parts) + ", false)"


def raw_hits_sql(relation: str, raw_column: str, rid_column: str, ledger: str = TABLE) -> str:
    """SELECT of the `rid_column` values of rows of `relation` whose raw text holds any token
    that is in the ledger (quarantined lines: an email, an id, an email hash)."""
    tries = " OR ".join(_in_ledger(sql, kind, ledger) for kind, sql in TOKEN_KEYS)
    return f"""
        SELECT DISTINCT rid FROM (
            SELECT {rid_column} AS rid,
                   unnest(regexp_split_to_array(coalesce({raw_column}, ''), '{TOKEN_SPLIT}')) AS t
            FROM {relation})
        WHERE t <> '' AND ({tries})"""
