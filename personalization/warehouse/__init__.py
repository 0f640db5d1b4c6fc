"""The DuckDB warehouse built by dbt: `build(ds, stage, settings)` runs one dbt stage.

Modules: `dbt` (the runner), `catalog` (segments from the manifest).
"""

from personalization.warehouse.dbt import build, generate_docs, invoke

__all__ = ["build", "generate_docs", "invoke"]
