"""Airflow Assets for what the nightly run publishes, so other DAGs can schedule on them.

- `personalization_lake_<source>`: a lake partition of `<source>` was (re)written; one event
  per extract run, `extra` = the business day and each table's partition path and counts.
- `personalization_warehouse`: dbt rebuilt the warehouse (`extra.stage` = marts or segments).
- `personalization_export`: the export of a day was published (`extra.path`, `extra.ds`).

URIs are logical (`x-personalization://...`): the storage behind them is configuration
(a local folder, later object storage); the events carry the real paths.

A consumer schedules on one: `@dag(schedule=EXPORT)` runs after every published export and
reads the day from `triggering_asset_events[EXPORT][-1].extra["ds"]`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

from personalization.config import Settings
from personalization.observability import StepReport

GROUP = "personalization"
WAREHOUSE = Asset(name="personalization_warehouse", uri="x-personalization://warehouse",
                  group=GROUP)
EXPORT = Asset(name="personalization_export", uri="x-personalization://exports", group=GROUP)


def lake(source: str) -> Asset:
    """The lake partitions of one source (all its tables)."""
    return Asset(name=f"personalization_lake_{source}", uri=f"x-personalization://lake/{source}",
                 group=GROUP)


def outlets_for(step: str) -> list[Asset]:
    """The Assets a pipeline step updates: by name, so a new `extract_<source>` gets its own."""
    if step.startswith("extract_"):
        return [lake(step.removeprefix("extract_"))]
    if step.startswith("build_"):
        return [WAREHOUSE]
    if step == "export":
        return [EXPORT]
    return []


def event_extra(step: str, ds: str, reports: list[StepReport], settings: Settings) -> dict[str, Any]:
    """What a consumer needs from the event: the day, where the data is, and the counts."""
    extra: dict[str, Any] = {"ds": ds, "step": step}
    if step.startswith("extract_"):
        extra["partitions"] = {
            r.step.split(".", 1)[-1]: {"path": r.details.get("path"), "rows": r.rows_out,
                                       "rows_quarantined": r.rows_quarantined, "status": r.status}
            for r in reports}
    elif step.startswith("build_"):
        extra.update(stage=step.removeprefix("build_"), path=str(settings.warehouse_path),
                     models=sum(r.rows_out for r in reports))
    elif step == "export":
        extra.update(path=str(settings.exports_dir / ds),
                     rows=sum(r.rows_out for r in reports))
    return extra
