"""CSV landing files (UTF-8, header row) -> typed lake rows + quarantine, all in DuckDB SQL.

A record is one line: quoted fields may hold commas and doubled quotes, not line breaks (the
contract's exports never wrap). A line that is not well-formed CSV (an unclosed quote, ...) is
quarantined as `malformed_csv`; one with a different number of fields than the header as
`wrong_field_count`. Columns are found by header name, so their order may change; extra
columns are ignored with a warning, a missing contract column fails the file.
"""

from __future__ import annotations

import csv
import logging
from datetime import date
from pathlib import Path

import duckdb

from personalization.exceptions import ExtractError
from personalization.extract.contracts import TableSpec
from personalization.extract.lines import first_line, streamed_lines, structural_reason
from personalization.extract.rules import blank_to_null, row_reason, typed_columns, typed_select
from personalization.observability import log_event

logger = logging.getLogger(__name__)

_FIELD = r'("(?:[^"]|"")*"|[^,"][^,]*|)'
# Matched against "," || line so that every field, even an empty first one, has a comma
# before it (RE2 would otherwise skip an empty match at the start).
LINE_RE = rf"(,{_FIELD})+"
FIELD_RE = rf",{_FIELD}"


def _header(path: Path) -> list[str] | None:
    line = first_line(path)
    if line is None or not line.strip():
        return None
    return [name.strip() for name in next(csv.reader([line]))]


def extract_csv(con: duckdb.DuckDBPyConnection, path: Path, table: TableSpec, ds: date,
                clock_skew_minutes: int, source_file: str) -> int | None:
    """Load `path` into tables `out_<table>` and `q_<table>`.

    Returns:
        rows_in (data lines that are not blank), or None when the file is empty (zero bytes
        or header only).

    Raises:
        ExtractError: the header lacks a contract column, or the file cannot be read.
    """
    # The data lines that are not blank (regexp_matches: far cheaper than trim()).
    data_lines = ("SELECT line_number, raw FROM batch_lines "
                  "WHERE line_number > 1 AND regexp_matches(raw, '\\S')")
    header = _header(path)
    if header is None:
        with streamed_lines(con, path, "split", data_lines):
            if con.execute("SELECT count(*) FROM split").fetchall()[0][0]:
                raise ExtractError(f"{path}: the first line must be the header, but it is blank")
        return None
    missing = [c.name for c in table.columns if c.name not in header]
    if missing:
        raise ExtractError(f"{path}: header lacks contract column(s) {missing}; header is {header}")
    extra = [h for h in header if h not in {c.name for c in table.columns}]
    if extra:
        log_event(logger, "extract_extra_columns", logging.WARNING, file=source_file, ignored=extra)
    index = {name: header.index(name) + 1 for name in header}  # first occurrence, 1-based
    fields = ",\n  ".join(
        f"{blank_to_null(f'fields[{index[c.name]}]')} AS v_{c.name}" for c in table.columns
    )
    structural = structural_reason((f"NOT regexp_full_match(',' || raw, '{LINE_RE}')", "malformed_csv"))
    with streamed_lines(con, path, "split", data_lines):
        con.execute(f"""
            CREATE OR REPLACE TABLE checked AS
            WITH parsed AS (
              SELECT *, CASE WHEN structural IS NULL THEN list_transform(
                       regexp_extract_all(',' || raw, '{FIELD_RE}', 1),
                       lambda f: CASE WHEN starts_with(f, '"') THEN replace(f[2:-2], '""', '"') ELSE f END)
                     END AS fields
              FROM (SELECT *, {structural} AS structural FROM split)
            ), counted AS (
              SELECT *, coalesce(structural, CASE WHEN len(fields) <> {len(header)}
                                                  THEN 'wrong_field_count' END) AS structural2
              FROM parsed
            ), valued AS (
              SELECT line_number - 1 AS line_number, raw, structural2,
                {fields}
              FROM counted
            ), typed AS (
              SELECT {typed_columns(table)} FROM valued
            )
            SELECT line_number, raw,
              coalesce(structural2, {row_reason(table, ds, clock_skew_minutes)}) AS reason,
              {typed_select(table)}
            FROM typed
        """)
    cols = ", ".join(c.name for c in table.columns)
    con.execute(f"""CREATE OR REPLACE TABLE out_{table.name} AS
                    SELECT {cols}, line_number AS _line_number FROM checked WHERE reason IS NULL""")
    con.execute(f"""CREATE OR REPLACE TABLE q_{table.name} AS
                    SELECT ? AS source_file, line_number, raw, reason
                    FROM checked WHERE reason IS NOT NULL""", [source_file])
    rows_in = con.execute("SELECT count(*) FROM checked").fetchall()[0][0]
    return rows_in or None
