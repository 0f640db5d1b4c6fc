"""Lake paths and the atomic replacement of one `ds=` partition.

A partition holds exactly one file, `part-0.parquet`. It is written to a staging directory
`<lake>/.tmp/` (outside every reader glob such as `raw/<source>/<table>/*/*.parquet`, and
never named `ds=*`) and then moved into place with `os.replace`, which is atomic on one file
system: a reader sees the old file or the new one, never a half-written one, and a write
that dies before the swap leaves the previous partition untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

from personalization.exceptions import ExtractError
from personalization.lake import PART_FILE

logger = logging.getLogger(__name__)

STAGING_DIR = ".tmp"


def partition_dir(lake_dir: Path, area: str, source: str, table: str, ds: date) -> Path:
    """`<lake>/<area>/<source>/<table>/ds=<ds>` with area in raw, quarantine, load_log."""
    return lake_dir / area / source / table / f"ds={ds.isoformat()}"


def clean_stale_staging(lake_dir: Path, prefix: str) -> None:
    """Remove staging dirs of an earlier, killed write of the same partitions."""
    staging = lake_dir / STAGING_DIR
    if staging.is_dir():
        for stale in staging.glob(f"{prefix}*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def write_partition(target_dir: Path, lake_dir: Path, prefix: str,
                    write: Callable[[Path], None]) -> Path:
    """Replace `target_dir/part-0.parquet` atomically with what `write(tmp_file)` produces.

    Args:
        target_dir: the `ds=` partition directory.
        lake_dir: lake root; staging happens in `<lake>/.tmp/` on the same file system.
        prefix: staging name prefix (source, table and ds), for cleaning after a crash.
        write: writes the Parquet file to the path it is given.

    Returns:
        The final file path.

    Raises:
        ExtractError: the file could not be written or moved into place.
    """
    staging = lake_dir / STAGING_DIR / f"{prefix}{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True, exist_ok=True)
    tmp_file = staging / PART_FILE
    final = target_dir / PART_FILE
    try:
        write(tmp_file)
        target_dir.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_file, final)
        # Anything else in the partition (e.g. part-1 from an older layout) would be read
        # alongside part-0 and double rows: a partition is exactly one file.
        for other in target_dir.iterdir():
            if other.name != PART_FILE:
                if other.is_dir():
                    shutil.rmtree(other)
                else:
                    other.unlink()
    except OSError as e:
        raise ExtractError(f"cannot write lake partition {target_dir}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
