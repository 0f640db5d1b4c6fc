"""SQL for the checks at the door, generated from the column specs in `contracts`.

Every input relation holds one VARCHAR `v_<column>` per contract column (NULL when the field
is absent, empty or blank) and, computed once from it by `typed_columns`, the typed value
`t_<column>` of each parsed column. From them this module builds the lake value of each
column and a `reason` expression: NULL when the row is clean, else `'; '`-joined entries of the
form `<code>:<column>` (for example `bad_type:created_at; invalid_email:email`). The code
before the first ":" is what the quarantine counts group by.

Reason codes: missing_key, missing_value, bad_type, invalid_email, unknown_value,
future_timestamp, non_positive_quantity, negative_amount (plus the structural ones the file
readers add: invalid_encoding, malformed_csv, wrong_field_count, invalid_json,
not_an_object, no_items, bad_item, order_quarantined).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from personalization.extract.contracts import Column, TableSpec
from personalization.privacy.emails import valid_email_sql
from personalization.sql import literal

SHA256_RE = "[0-9a-fA-F]{64}"
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n")


def _words(values: tuple[str, ...]) -> str:
    return ", ".join(literal(v) for v in values)


def future_cutoff(ds: date, clock_skew_minutes: int) -> datetime:
    """First instant that counts as "in the future" for a delivery of `ds` (UTC)."""
    return datetime.combine(ds + timedelta(days=1), time()) + timedelta(minutes=clock_skew_minutes)


def typed_value(col: Column, v: str | None = None) -> str:
    """SQL for the lake value of `col` from its VARCHAR input (NULL when it does not parse)."""
    v = v or f"v_{col.name}"
    t = f"trim({v})"
    match col.kind:
        case "text" | "email" | "sha256":
            return v
        case "enum":
            return f"lower({t})"
        case "timestamp":
            # With TimeZone=UTC, an offset-less value is read as UTC and any offset is honoured.
            return f"CAST(TRY_CAST({t} AS TIMESTAMPTZ) AS TIMESTAMP)"
        case "date":
            return f"TRY_CAST({t} AS DATE)"
        case "boolean":
            return (f"CASE WHEN lower({t}) IN ({_words(TRUE_WORDS)}) THEN true "
                    f"WHEN lower({t}) IN ({_words(FALSE_WORDS)}) THEN false END")
        case "double":
            d = f"TRY_CAST({t} AS DOUBLE)"
            return f"CASE WHEN isfinite({d}) THEN {d} END"
        case "quantity":
            d = f"TRY_CAST({t} AS DOUBLE)"
            return f"CASE WHEN {d} = round({d}) AND abs({d}) < 2147483647 THEN CAST({d} AS INTEGER) END"
    raise ValueError(f"unknown column kind {col.kind!r}")


# Kinds whose typed value is parsed (a cast, a lookup), not the input text itself.
_PARSED = ("enum", "timestamp", "date", "boolean", "double", "quantity")


def typed_columns(table: TableSpec) -> str:
    """`*, <typed value> AS t_<name>` for every parsed column: the relation the checks and
    the lake values read (`row_reason`, `typed_select`), so each value is parsed once per row,
    not once per use (a timestamp was parsed three times: 4% of a backfill's extract CPU)."""
    return ", ".join(["*", *(f"{typed_value(c)} AS t_{c.name}" for c in table.columns
                             if c.kind in _PARSED)])


def _value(col: Column) -> str:
    """The typed value of `col` in a relation holding `typed_columns`."""
    return f"t_{col.name}" if col.kind in _PARSED else typed_value(col)


def column_reasons(col: Column, ds: date, cutoff: datetime, label: str | None = None) -> list[str]:
    """SQL expressions, each NULL or one `<code>:<label>` entry for `col`.

    Args:
        col: the column spec.
        ds: logical date (dates after it are in the future).
        cutoff: first future instant (`future_cutoff`).
        label: SQL expression naming the column in the reason; default its name.
    """
    v = f"v_{col.name}"
    value = _value(col)
    label = label or literal(col.name)

    def entry(cond: str, code: str) -> str:
        return f"CASE WHEN {cond} THEN '{code}:' || {label} END"

    out = []
    if col.required:
        out.append(entry(f"{v} IS NULL", f"missing_{col.required}"))
    match col.kind:
        case "email":
            # The product's one rule for a valid email (personalization/privacy/emails.py).
            out.append(entry(f"{v} IS NOT NULL AND NOT {valid_email_sql(v)}", "invalid_email"))
        case "sha256":
            out.append(entry(f"{v} IS NOT NULL AND NOT regexp_full_match(trim({v}), '{SHA256_RE}')",
                             "bad_type"))
        case "enum":
            out.append(entry(f"{v} IS NOT NULL AND {value} NOT IN ({_words(col.values)})",
                             "unknown_value"))
        case "timestamp" | "date" | "boolean" | "double" | "quantity":
            out.append(entry(f"{v} IS NOT NULL AND ({value}) IS NULL", "bad_type"))
    if col.kind == "timestamp":
        out.append(entry(f"({value}) >= TIMESTAMP '{cutoff.isoformat(sep=' ')}'", "future_timestamp"))
    if col.kind == "date":
        out.append(entry(f"({value}) > DATE '{ds.isoformat()}'", "future_timestamp"))
    if col.kind == "quantity":
        out.append(entry(f"({value}) <= 0", "non_positive_quantity"))
    if col.non_negative:
        out.append(entry(f"({value}) < 0", "negative_amount"))
    return out


def row_reason(table: TableSpec, ds: date, clock_skew_minutes: int,
               label_prefix: str | None = None) -> str:
    """SQL for the whole row's reason: NULL when clean, else the `'; '`-joined entries.

    Args:
        table: the table spec.
        ds: logical date.
        clock_skew_minutes: allowance after the end of `ds` before a timestamp is "future".
        label_prefix: SQL expression put before each column name in the entries (used to
            say which item of an order failed, e.g. `items[2].quantity`).
    """
    cutoff = future_cutoff(ds, clock_skew_minutes)
    parts = []
    for col in table.columns:
        label = f"{label_prefix} || {literal(col.name)}" if label_prefix else None
        parts += column_reasons(col, ds, cutoff, label)
    return f"nullif(concat_ws('; ', {', '.join(parts)}), '')"


def typed_select(table: TableSpec) -> str:
    """`<typed value> AS <name>` for every column, with the lake type cast explicitly."""
    return ",\n  ".join(f"CAST({_value(c)} AS {c.sql_type}) AS {c.name}" for c in table.columns)


def blank_to_null(expr: str) -> str:
    """An input field: NULL when absent, empty or only whitespace (CSV "empty = unknown")."""
    # regexp_matches(x, '\\S') finds the first non-blank character: much cheaper than trim();
    # most values start with a visible character, which ascii() sees cheaper still.
    return f"CASE WHEN ascii({expr}) > 32 OR regexp_matches({expr}, '\\S') THEN {expr} END"
