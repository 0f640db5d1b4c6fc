"""The one place that writes Python values into DuckDB SQL text.

Prepared parameters (`con.execute(sql, [value])`) are preferred wherever DuckDB takes them;
these helpers are for the places it does not: DDL, `COPY ... TO`, `ATTACH`, `read_parquet()`
file lists and table functions. Values are quoted as string literals (single quotes doubled),
so nothing from a file, a setting or a YAML entry ever becomes SQL.
"""

from __future__ import annotations

from collections.abc import Iterable


def literal(value: object) -> str:
    """`value` (a path, a date, a name...) as a SQL string literal: `it's` -> `'it''s'`."""
    return "'" + str(value).replace("'", "''") + "'"


def literal_list(values: Iterable[object]) -> str:
    """A SQL list literal of strings, e.g. a file list for `read_parquet([...])`."""
    return "[" + ", ".join(literal(v) for v in values) + "]"


def identifier(name: str) -> str:
    """`name` as a quoted SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'
