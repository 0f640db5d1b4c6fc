"""Preview a segment SQL file against the current warehouse: its size and a sample.

The file need not be part of the project yet: dbt compiles its SQL inline in the project's
context (refs, vars, macros), then DuckDB counts and samples the compiled query on a
read-only connection. Nothing is written to the warehouse and the manifest that
`catalog.list_segments` reads is left alone (`--no-write-json`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from personalization.config import Settings
from personalization.exceptions import WarehouseError
from personalization.observability import log_event, timed
from personalization.privacy.encryption import connect_warehouse

logger = logging.getLogger(__name__)

# An in-model config() block means nothing to an inline query and dbt rejects it there.
_CONFIG_CALL = re.compile(r"\{\{\s*config\s*\(.*?\)\s*\}\}", re.DOTALL)


@dataclass(frozen=True)
class SegmentPreview:
    """What a segment SQL file selects today."""

    name: str
    ds: date | None
    size: int
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    compiled_sql: str
    seconds: float


def compile_segment(file: Path, ds: date | None, settings: Settings) -> str:
    """The SQL of a segment file as dbt compiles it in the project for `ds`.

    Raises:
        WarehouseError: the file cannot be read, or dbt fails to compile it (the message
            names the file and carries dbt's error).
    """
    from dbt.cli.main import dbtRunner

    from personalization.warehouse.dbt import common_args, dbt_environment

    try:
        sql = _CONFIG_CALL.sub("", Path(file).read_text(encoding="utf-8"))
    except OSError as e:
        raise WarehouseError(f"cannot read segment file {file}: {e}") from e
    # dbt reports inline parse errors only as log events ("Error parsing inline query" is all
    # the exception says), so collect error-level messages to show the real cause.
    errors: list[str] = []

    def collect(event: Any) -> None:
        if event.info.level == "error" and event.info.msg:
            errors.append(_one_line(str(event.info.msg)))

    args = ["--quiet", "--no-use-colors", "--no-send-anonymous-usage-stats", "compile",
            "--inline", sql, "--no-write-json", "--no-populate-cache",
            "--vars", json.dumps(_vars(ds, settings)), *common_args(settings)]
    with dbt_environment(settings):
        outcome = dbtRunner(callbacks=[collect]).invoke(args)
    nodes = getattr(outcome.result, "results", None) or []
    if not outcome.success or outcome.exception is not None or not nodes:
        messages = errors or [_one_line(str(outcome.exception or "dbt compiled nothing"))]
        raise WarehouseError(f"segment {Path(file).stem} ({file}) does not compile: "
                             + " | ".join(messages))
    return nodes[0].node.compiled_code


def segment_preview(file: Path, ds: date | None, settings: Settings,
                    limit: int = 10) -> SegmentPreview:
    """Compile one segment file and run it read-only: size and the first `limit` rows.

    Args:
        file: a segment SQL file (inside the project or not).
        ds: logical date for every "last N days"; None = the warehouse's latest
            `customer_profiles.as_of_date` (the project default when there is none).
        settings: where the project and warehouse live.
        limit: sample rows to return.

    Raises:
        WarehouseError: compile or query failure, or the warehouse is missing / locked.
    """
    import duckdb

    file = Path(file)
    if not settings.warehouse_path.exists():
        raise WarehouseError(f"warehouse {settings.warehouse_path} does not exist: build it first")
    ds = ds or _latest_ds(settings)
    with timed() as t:
        compiled = compile_segment(file, ds, settings)
        try:
            with connect_warehouse(settings, read_only=True) as con:
                size = con.execute(f"select count(*) from ({compiled}) as segment").fetchone()[0]
                cursor = con.execute(f"select * from ({compiled}) as segment "
                                     f"order by 1 limit {int(limit)}")
                columns = tuple(d[0] for d in cursor.description)
                rows = tuple(tuple(r) for r in cursor.fetchall())
        except duckdb.Error as e:
            raise WarehouseError(f"segment {file.stem} ({file}) failed in the warehouse: "
                                 f"{_one_line(str(e))}") from e
    log_event(logger, "segment_preview", segment=file.stem, ds=str(ds), size=size,
              seconds=t["seconds"])
    return SegmentPreview(file.stem, ds, int(size), columns, rows, compiled, t["seconds"])


def preview(file: Path, ds: date | None, settings: Settings, limit: int = 10) -> Group:
    """Rich renderable for `personalization segments preview FILE`: size line + sample table."""
    result = segment_preview(file, ds, settings, limit=limit)
    header = Text.assemble(
        (result.name, "bold"), f" on {result.ds or 'the project default date'}: ",
        (f"{result.size:,}", "bold green"), " members",
        f" (showing {len(result.rows)}, {result.seconds:.1f} s)",
    )
    table = Table(*result.columns, title=f"sample of {result.name}", show_lines=False)
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return Group(header, table)


def _vars(ds: date | None, settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"confidence_threshold": settings.confidence_threshold}
    if ds is not None:
        out["ds"] = ds.isoformat()
    return out


def _latest_ds(settings: Settings) -> date | None:
    """Newest as_of_date in customer_profiles: the date the warehouse was last built for."""
    import duckdb

    try:
        with connect_warehouse(settings, read_only=True) as con:
            return con.execute("select max(as_of_date) from main.customer_profiles").fetchone()[0]
    except duckdb.Error:
        return None


def _one_line(message: str, limit: int = 400) -> str:
    text = re.sub(r"\s+", " ", message).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
