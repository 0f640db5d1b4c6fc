"""The lake's path layout, in one place.

```
<lake>/<area>/<source>/<table>/ds=<YYYY-MM-DD>/part-0.parquet
```

with area `raw` (what the extract accepted), `quarantine` (what it refused, with a reason) or
`load_log` (one row per load). A table is named `source/table` (`crm/contacts`). dbt reads the
same layout through `external_location` in `dbt_project/models/staging/_sources.yml`; the
extract writes it (`personalization.extract.partition`); everything else finds files here.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from personalization.config import Settings

PART_FILE = "part-0.parquet"
AREAS = ("raw", "quarantine", "load_log")


def ds_dir(ds: date | str | None) -> str:
    """`ds=<YYYY-MM-DD>`, or the glob `ds=*` for every partition when `ds` is None."""
    if ds is None:
        return "ds=*"
    return f"ds={ds.isoformat() if isinstance(ds, date) else ds}"


def table_dir(settings: Settings, table: str, area: str = "raw") -> Path:
    """`<lake>/<area>/<source>/<table>` for `table` = `source/table`."""
    return settings.lake_dir / area / table


def partition_file(settings: Settings, table: str, ds: date | str | None = None,
                   area: str = "raw") -> Path:
    """The one file of a partition; with `ds` None, the glob over all partitions."""
    return table_dir(settings, table, area) / ds_dir(ds) / PART_FILE


def partition_files(settings: Settings, table: str, ds: date | str | None = None,
                    area: str = "raw") -> list[Path]:
    """The partition files that exist (all, or the one of `ds`), sorted by date."""
    return sorted(table_dir(settings, table, area).glob(f"{ds_dir(ds)}/{PART_FILE}"))


def area_partitions(settings: Settings, area: str, ds: date | str | None = None) -> list[Path]:
    """Partition directories of every table in `area` (all dates, or `ds`)."""
    return sorted((settings.lake_dir / area).glob(f"*/*/{ds_dir(ds)}"))
