"""Mailable segment files: what a marketer may upload to an ESP as it is.

`segments/<segment>.csv` is the full list for analysis: it keeps the holdout (the control
group that must never be mailed), `unified_id`, `FALLBACKS` and `is_holdout`. Uploading it
mails the control group and destroys the experiment. The mailable file holds only rows
that may be mailed (holdout removed) and only what an ESP import needs: the email, the
merge tags, the segment's own columns and the A/B variant (as the `VARIANT` merge field, so
the ESP can send each person their variant).

Import presets (`import_presets.yml`) rename the columns to what each ESP's CSV import maps
by itself; the rows stay the same.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from pathlib import Path

import duckdb
import yaml

from personalization.exceptions import ExportError
from personalization.export import files

MAILABLE_DIR = "mailable"
# Bookkeeping columns of the full file that an ESP must not receive.
NOT_FOR_ESP = ("unified_id", "FALLBACKS", "is_holdout")
PRESETS_PATH = Path(__file__).with_name("import_presets.yml")
ORDER_KEY = "_mailable_order"  # orders the rows; not written


def mailable_query(relation: str, columns: list[str]) -> str:
    """SQL of the mailable rows of `relation` (a full segment table or file), with the
    `unified_id` that orders them as `ORDER_KEY` (`write_mailable` does not write it).

    Args:
        relation: a table name or `read_parquet(...)` holding the full segment rows.
        columns: the relation's columns in order (`email` first, `variant` last).
    """
    if "is_holdout" not in columns or "email" not in columns:
        raise ExportError(f"segment rows in {relation} lack email or is_holdout")
    keep = []
    for name in columns:
        if name in NOT_FOR_ESP:
            continue
        quoted = '"' + name.replace('"', '""') + '"'
        keep.append(f'{quoted} AS "VARIANT"' if name == "variant" else quoted)
    # Holdout rows never leave in a mailable file; a null flag counts as holdout (fail closed).
    return (f"SELECT {', '.join(keep)}, unified_id AS {ORDER_KEY} FROM {relation} "
            f"WHERE is_holdout IS NOT DISTINCT FROM false")


def write_mailable(con: duckdb.DuckDBPyConnection, relation: str, path: Path) -> int:
    """Write the mailable CSV of `relation` to `path`, by unified_id; returns its rows."""
    columns = [name for name, _ in files.column_types(con, f"(SELECT * FROM {relation})")]
    return files.write_csv(con, mailable_query(relation, columns), path, order_by=ORDER_KEY,
                           hidden=(ORDER_KEY,))


@lru_cache(maxsize=1)
def load_presets(path: Path = PRESETS_PATH) -> dict[str, dict]:
    """`{preset: {label, columns: {our column: ESP column}}}` from `import_presets.yml`."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ExportError(f"cannot read import presets {path}: {e}") from e
    presets = raw.get("presets") or {}
    for name, preset in presets.items():
        if not isinstance(preset, dict) or not isinstance(preset.get("columns", {}), dict):
            raise ExportError(f"{path}: preset {name!r} needs a `columns` mapping")
    return {str(k): {"label": str(v.get("label", k)), "columns": dict(v.get("columns") or {})}
            for k, v in presets.items()}


def preset_header(header: list[str], preset: str) -> list[str]:
    """`header` with the preset's names (columns it does not name keep theirs)."""
    presets = load_presets()
    if preset not in presets:
        raise ExportError(f"unknown import preset {preset!r}; known: {sorted(presets)}")
    mapping = presets[preset]["columns"]
    return [str(mapping.get(name, name)) for name in header]


def header_line(names: list[str]) -> bytes:
    """One CSV header line as the export writes it (comma, `"`-quoted when needed, `\\n`)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(names)
    return out.getvalue().encode("utf-8")
