"""JSON-lines landing files (orders, pixel events) -> typed lake rows + quarantine, in SQL.

Orders are flattened into `orders` and `order_items`. An order and its items stay together:
if the order line or any of its items fails a check, the order and all its items are
quarantined (the order's reason names the failing item, e.g.
`non_positive_quantity:items[2].quantity`; clean items of such an order get
`order_quarantined`). Counting, per file:

- orders: rows_in = non-blank lines;
- order_items: rows_in = entries of the `items` arrays of the lines that parse as JSON
  objects (a line that is not JSON has no countable items);

and in both tables rows_in = rows_loaded + rows_quarantined.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from personalization.extract.contracts import TableSpec
from personalization.extract.lines import stage, streamed_lines, structural_reason
from personalization.extract.rules import blank_to_null, row_reason, typed_columns, typed_select
from personalization.sql import literal

# Never stored, not even in quarantine: data minimisation (user agent) and no IP addresses.
DROPPED_KEYS = ("user_agent", "ip", "ip_address", "client_ip", "remote_addr")
_IPV4_RE = r"\b(?:\d{1,3}\.){3}\d{1,3}\b"
_IPV6_RE = r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b"


# Not blank: far cheaper than trim().
NON_BLANK_LINES = "SELECT line_number, raw FROM batch_lines WHERE regexp_matches(raw, '\\S')"


def _fields(table: TableSpec, extra: str = "") -> str:
    """CTEs over the lines of `objs`, the last, `fields(line_number, raw, structural, f[,
    extra])`: `f` the list of the table's fields, `structural` why the line is not a JSON
    object (then `f` is NULL). Each line is parsed once: `try` gives NULL for what is not
    JSON, and only those few lines are parsed again to tell why (json_valid, json_type and
    the fields parsed each line three times: a fifth of the events' extract CPU)."""
    paths = ", ".join(f"'$.\"{c.name}\"'" for c in table.columns)
    # A valid JSON text is an object exactly when it starts with "{" after blanks.
    structural = structural_reason(
        ("f IS NULL AND NOT json_valid(raw)", "invalid_json"),
        ("NOT (ascii(raw) = 123 OR regexp_matches(raw, '^\\s*\\{'))", "not_an_object"))
    return f"""parsed AS MATERIALIZED (
      SELECT line_number, raw, try(json_extract_string(raw, [{paths}])) AS f FROM objs
    ), fields AS (
      SELECT line_number, raw, structural, CASE WHEN structural IS NULL THEN f END AS f
        {", " + extra if extra else ""}
      FROM (SELECT *, {structural} AS structural FROM parsed)
    )"""


def _field_values(table: TableSpec) -> str:
    """`v_<column>` for every column from the list `f` of `_fields`."""
    return ", ".join(blank_to_null(f"f[{i}]") + f" AS v_{c.name}"
                     for i, c in enumerate(table.columns, start=1))


def _values(table: TableSpec, json_expr: str) -> str:
    paths = ", ".join(f"'$.\"{c.name}\"'" for c in table.columns)
    return ",\n  ".join(
        f"{blank_to_null(f'json_extract_string({json_expr}, [{paths}])[{i}]')} AS v_{c.name}"
        for i, c in enumerate(table.columns, start=1)
    )


def minimised_raw(expr: str) -> str:
    """SQL: the raw line without the dropped keys and with IP addresses masked."""
    drop = "{" + ", ".join(f'"{k}": null' for k in DROPPED_KEYS) + "}"
    keys = "|".join(DROPPED_KEYS)
    without = (f"CASE WHEN json_valid({expr}) AND json_type({expr}) = 'OBJECT' "
               f"THEN CAST(json_merge_patch({expr}, '{drop}') AS VARCHAR) "
               f"ELSE regexp_replace({expr}, '\"({keys})\"\\s*:\\s*\"(?:[^\"\\\\]|\\\\.)*\"', "
               f"'\"\\1\":null', 'g') END")
    return mask_ips(without)


def mask_ips(expr: str) -> str:
    """SQL: `expr` with IPv4/IPv6 addresses replaced by `<ip>`."""
    return (f"regexp_replace(regexp_replace({expr}, '{_IPV4_RE}', '<ip>', 'g'), "
            f"'{_IPV6_RE}', '<ip>', 'g')")


def extract_events(con: duckdb.DuckDBPyConnection, path: Path, table: TableSpec, ds: date,
                   clock_skew_minutes: int, source_file: str) -> int | None:
    """Load pixel events into `out_events` and `q_events`; return rows_in (None if empty)."""
    # One pass over the streamed lines (the largest file of a night, read once), staged as a
    # file in line order.
    with streamed_lines(con, path, "objs", NON_BLANK_LINES):
        checked = stage(con, "checked", f"""
            WITH {_fields(table)}, valued AS (
              SELECT line_number, raw, structural, {_field_values(table)}
              FROM fields
            ), typed AS (
              SELECT {typed_columns(table)} FROM valued
            ), reasoned AS (
              SELECT *, coalesce(structural, {row_reason(table, ds, clock_skew_minutes)}) AS reason
              FROM typed
            )
            SELECT line_number, reason,
              CASE WHEN reason IS NOT NULL THEN raw END AS raw,  -- clean rows need no copy
              {typed_select(table)}
            FROM reasoned
        """)
    con.execute(f"CREATE OR REPLACE VIEW checked AS SELECT * FROM {checked}")
    rows_in = con.execute("SELECT count(*) FROM checked").fetchall()[0][0]
    if not rows_in:
        return None
    cols = ", ".join(mask_ips(c.name) + f" AS {c.name}" if c.name == "url" else c.name
                     for c in table.columns)
    # Views, not copies: the day's events are the largest table an extract holds.
    con.execute(f"""CREATE OR REPLACE VIEW out_{table.name} AS
                    SELECT {cols}, line_number AS _line_number FROM checked WHERE reason IS NULL""")
    con.execute(f"""CREATE OR REPLACE VIEW q_{table.name} AS
                    SELECT {literal(source_file)} AS source_file, line_number,
                           {minimised_raw('raw')} AS raw, reason
                    FROM checked WHERE reason IS NOT NULL""")
    return rows_in


def extract_orders(con: duckdb.DuckDBPyConnection, path: Path, orders: TableSpec,
                   items: TableSpec, ds: date, clock_skew_minutes: int,
                   source_file: str) -> dict[str, int] | None:
    """Load orders.jsonl into `out_orders`, `out_order_items`, `q_orders`, `q_order_items`.

    Returns:
        rows_in per table (see the module docstring), or None when the file is empty.
    """
    skew = clock_skew_minutes
    # The parsed lines (with their text and items) are staged as a compressed file
    # (lines.stage), not held in a table, and checked orders keep the text of quarantined ones
    # only: at 3M people (10M orders, 15M items) the tables spilled 7.7 GB and took 6 GB of
    # memory (now 1.0 GB and 4.4 GB, the same CPU). Staging the item and order checks too
    # cut memory to 2.4 GB but cost 30% more CPU (their re-reads decode strings again).
    # The lines are streamed into this one statement, as the events'.
    with streamed_lines(con, path, "objs", NON_BLANK_LINES):
        order_values = stage(con, "order_values", f"""
            WITH {_fields(orders, "CASE WHEN structural IS NULL "
                                  "THEN json_extract(raw, '$.items') END AS items_json")}
            SELECT line_number, raw, structural, items_json,
              CASE WHEN structural IS NOT NULL THEN NULL
                   WHEN items_json IS NULL OR json_type(items_json) = 'NULL' THEN 'missing_value:items'
                   WHEN json_type(items_json) <> 'ARRAY' THEN 'bad_type:items'
                   WHEN json_array_length(items_json) = 0 THEN 'no_items'
              END AS items_problem,
              {_field_values(orders)}
            FROM fields
        """)
    con.execute(f"CREATE OR REPLACE VIEW order_values AS SELECT * FROM {order_values}")
    if not con.execute("SELECT count(*) FROM order_values").fetchall()[0][0]:
        return None
    # One row per entry of every `items` array (only for lines that are JSON objects).
    prefix = "'items[' || idx || '].'"
    con.execute(f"""
        CREATE OR REPLACE TABLE item_checked AS
        WITH entries AS (
          SELECT o.line_number, u.item, CAST(u.idx AS INTEGER) AS idx
          FROM order_values o,
               unnest(CASE WHEN json_type(o.items_json) = 'ARRAY'
                             THEN CAST(o.items_json AS JSON[]) END) WITH ORDINALITY AS u(item, idx)
          WHERE o.structural IS NULL AND json_type(o.items_json) = 'ARRAY'
        ), item_values AS (
          SELECT line_number, idx, CAST(item AS VARCHAR) AS raw,
            CASE WHEN json_type(item) <> 'OBJECT' THEN 'not_an_object' END AS structural,
            {_values(items, "CASE WHEN json_type(item) = 'OBJECT' THEN item END")}
          FROM entries
        )
        SELECT line_number, idx, raw,
          coalesce(structural, {row_reason(items, ds, skew)}) AS reason,
          coalesce(CASE WHEN structural IS NOT NULL
                        THEN structural || ':items[' || idx || ']' END,
                   {row_reason(items, ds, skew, label_prefix=prefix)}) AS order_reason,
          {typed_select(items)}
        FROM (SELECT {typed_columns(items)} FROM item_values) AS item_values
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE order_checked AS
        WITH item_problems AS (
          SELECT line_number, string_agg(order_reason, '; ' ORDER BY idx) AS reason
          FROM item_checked WHERE order_reason IS NOT NULL GROUP BY line_number
        )
        SELECT line_number, reason,
          CASE WHEN reason IS NOT NULL THEN raw END AS raw,  -- clean orders need no copy
          * EXCLUDE (line_number, reason, raw)
        FROM (
          SELECT o.line_number, o.raw,
            coalesce(o.structural, nullif(concat_ws('; ', {row_reason(orders, ds, skew)},
                                                     o.items_problem, p.reason), '')) AS reason,
            {typed_select(orders)}
          FROM (SELECT {typed_columns(orders)} FROM order_values) o
          LEFT JOIN item_problems p USING (line_number)
        )
    """)
    order_cols = ", ".join(c.name for c in orders.columns)
    item_cols = ", ".join(c.name for c in items.columns)
    con.execute(f"""CREATE OR REPLACE VIEW out_orders AS
                    SELECT {order_cols}, line_number AS _line_number
                    FROM order_checked WHERE reason IS NULL""")
    con.execute(f"""CREATE OR REPLACE VIEW q_orders AS
                    SELECT {literal(source_file)} AS source_file, line_number, raw, reason
                    FROM order_checked WHERE reason IS NOT NULL""")
    con.execute(f"""CREATE OR REPLACE VIEW out_order_items AS
                    SELECT o.order_id, i.idx AS line_number, {item_cols}, i.line_number AS _line_number
                    FROM item_checked i JOIN out_orders o ON o._line_number = i.line_number""")
    con.execute(f"""CREATE OR REPLACE VIEW q_order_items AS
                    SELECT {literal(source_file)} AS source_file, i.line_number, i.raw,
                           coalesce(i.reason, 'order_quarantined') AS reason
                    FROM item_checked i JOIN order_checked o USING (line_number)
                    WHERE o.reason IS NOT NULL""")
    counts = con.execute("""SELECT (SELECT count(*) FROM order_checked),
                                   (SELECT count(*) FROM item_checked)""").fetchall()[0]
    return {orders.name: counts[0], items.name: counts[1]}
